package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

type notifier struct{ got *[]string }

func (e notifier) Notify(w *crdt.Write) { *e.got = append(*e.got, "engine "+w.ID) }

// TestWritePipelineOrder: a local write and a decided write run the
// conflict bases, the local-write hooks in registration order and the
// caller's additions in one batch, then the observers in registration
// order and the engine; a decided write that decides nothing runs none
// of them.
func TestWritePipelineOrder(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "n", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := New(Options{Store: st, Clock: hlc.NewClock(nil, time.Minute), Policies: map[string]string{"jobs": "manual"}})
	var got []string
	for _, name := range []string{"first", "second"} {
		n.OnLocalWrite(name, func(b *store.Batch, res *store.WriteResult) error {
			got = append(got, name+" "+res.Write.ID)
			return nil
		})
		n.OnWritten(name, func(w *crdt.Write) { got = append(got, "after "+name+" "+w.ID) })
	}
	n.SetEngine(notifier{&got})
	v := func(s string) []crdt.FieldValue { return []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(s)}} }
	also := func(b *store.Batch, res *store.WriteResult) error {
		got = append(got, "also "+res.Write.ID)
		return nil
	}
	if _, err := n.Write("jobs", "a", v("x"), false, also); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WriteDecided("jobs", "a", func(*crdt.Record) ([]crdt.FieldValue, bool, bool) { return v("y"), false, true }, also); err != nil {
		t.Fatal(err)
	}
	res, err := n.WriteDecided("jobs", "a", func(*crdt.Record) ([]crdt.FieldValue, bool, bool) { return nil, false, false }, also)
	if err != nil || res != nil {
		t.Fatalf("nothing decided: %v %v", res, err)
	}
	want := "[first a second a also a after first a after second a engine a first a second a also a after first a after second a engine a]"
	if fmt.Sprint(got) != want {
		t.Errorf("order %v\nwant  %s", got, want)
	}
	// The decided write replaced "x" on a manual table: its base.
	if e, ok, err := st.Base("jobs", "a", "f"); err != nil || !ok || string(e.Value) != string(crdt.MustValue("x")) {
		t.Errorf("base after the decided write: %v %v %v, want x", e, ok, err)
	}
	local, apply, written, _ := n.Hooks()
	if fmt.Sprint(local, apply, written) != "[bases first second] [bases] [first second engine]" {
		t.Errorf("hooks %v %v %v", local, apply, written)
	}
}
