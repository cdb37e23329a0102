package store

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

// TestBase: a base recorded in a write's batch reads back (value, origin,
// stamp), is per field, and goes with the record's state when it is
// purged; a name that is not valid is refused.
func TestBase(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/b", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	clock := fakeClock(t0)
	w1, err := s.Write(clock, "t", "a", []crdt.FieldValue{fv("f", "old")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteWith(clock, "t", "a", []crdt.FieldValue{fv("f", "new")}, false, func(b *Batch, r *WriteResult) error {
		for _, fo := range r.Outcome.Fields {
			for _, e := range fo.Superseded {
				b.PutBase("t", "a", fo.Name, e)
			}
		}
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	e, ok, err := s.Base("t", "a", "f")
	if err != nil || !ok || e.Dot() != w1.Dot() || e.TS != w1.TS || e.Value.String() != `"old"` {
		t.Fatalf("Base = %+v, %v, %v; want the value of %v", e, ok, err, w1.Dot())
	}
	if _, ok, err := s.Base("t", "a", "g"); ok || err != nil {
		t.Fatalf("base of another field: %v, %v", ok, err)
	}
	if _, _, err := s.Base("", "a", "f"); err == nil {
		t.Fatal("an empty table name was accepted")
	}
	if err := s.Update(func(b *Batch) error { b.Purge("t", "a", nil); return b.Err() }); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Base("t", "a", "f"); ok || err != nil {
		t.Fatalf("base after purge: %v, %v; want gone", ok, err)
	}
}
