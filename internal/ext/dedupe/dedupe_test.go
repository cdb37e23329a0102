package dedupe

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// host is the detector's Host made of a node alone.
type host struct{ *node.Node }

func (host) Log() hclog.Logger { return hclog.NewNullLogger() }

// TestDetectorThroughHost: plugged into a node's write pipeline, the
// detector flags a record whose key values equal a live record's (not one
// whose differ, nor one lacking a key), in the write's batch, and
// publishes the flag as a record of Table that List shows.
func TestDetectorThroughHost(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "hub", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(node.Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	h := host{n}
	if New(h, map[string][]string{"contacts": nil}) != nil {
		t.Fatal("a detector without key fields")
	}
	d := New(h, map[string][]string{"contacts": {"email"}})
	n.OnLocalWrite("dedupe", d.TrackLocal)
	if err := Rebuild(h, d); err != nil {
		t.Fatal(err)
	}
	put := func(id string, fields map[string]any) {
		t.Helper()
		var fv []crdt.FieldValue
		for k, v := range fields {
			fv = append(fv, crdt.FieldValue{Name: k, Value: crdt.MustValue(v)})
		}
		if _, err := n.Write("contacts", id, fv, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("a", map[string]any{"email": "x@example.com", "name": "A"})
	put("b", map[string]any{"email": "y@example.com"})
	put("c", map[string]any{"name": "no key"})
	put("d", map[string]any{"email": "x@example.com", "name": "D"})
	if err := d.Publish(); err != nil {
		t.Fatal(err)
	}
	fs, err := List(st, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != "d" || fmt.Sprint(fs[0].With) != "[a]" || fs[0].Status != "open" {
		t.Fatalf("open flags %+v, want d flagged as a duplicate of a", fs)
	}
	if cs, err := Conflicts(st); err != nil || len(cs) != 1 || cs[0].Kind != "duplicate" {
		t.Fatalf("as conflicts: %+v %v", cs, err)
	}
	if ps, err := st.DupPendings(10); err != nil || len(ps) != 0 {
		t.Fatalf("%d flags left pending after Publish (%v)", len(ps), err)
	}
}
