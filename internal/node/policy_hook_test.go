package node

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// TestBaseTrackerReadsPolicyThroughBatch: the base tracker (a hook of
// local and remote writes) also reads the table's policy through the
// batch: a write replacing a value of a table made manual in the same
// batch keeps the replaced value as the field's base.
func TestBaseTrackerReadsPolicyThroughBatch(t *testing.T) {
	open := func(name string) *store.Store {
		st, err := store.Open(store.Options{Dir: name, FS: vfs.NewMem(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st, hub, dev := open("st"), open("hub"), open("dev")
	clk := hlc.NewClock(nil, time.Minute)

	first, err := dev.Write(clk, "jobs", "1", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue("first")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyRemote(clk, []*crdt.Write{first}, nil); err != nil {
		t.Fatal(err)
	}
	v := crdt.MustValue(string(policy.Manual))
	pw, err := hub.Write(clk, PolicyTable, "jobs", []crdt.FieldValue{{Name: HistoryField(clk.Now()), Value: v}, {Name: "policy", Value: v}}, false)
	if err != nil {
		t.Fatal(err)
	}
	second, err := dev.Write(clk, "jobs", "1", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue("second")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := []*crdt.Write{pw, second}
	n := New(Options{Store: st, Clock: clk})
	hook := n.ApplyHook() // the conflict bases first
	if _, err := st.ApplyRemoteWith(clk, ws, nil, func(b *store.Batch, res *store.Result) error {
		return hook(b, ws, res)
	}); err != nil {
		t.Fatal(err)
	}
	base, ok, err := st.Base("jobs", "1", "f")
	if err != nil || !ok || base.Dot() != first.Dot() {
		t.Fatalf("base of jobs/1.f: %+v %v %v; want the replaced value %v (the table is manual from this batch)", base, ok, err, first.Dot())
	}
}
