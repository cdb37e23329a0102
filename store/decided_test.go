package store

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestWriteDecided: the write is decided from the record as it is under
// the write mutex; declining writes nothing (no sequence used, hook not
// called); a restamp recorded in the hook's batch reads back, survives a
// reopen, and a bad decided value is refused with nothing stored.
func TestWriteDecided(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/d", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	w1, err := s.Write(clock, "t", "a", []crdt.FieldValue{fv("f", 1)}, false)
	if err != nil {
		t.Fatal(err)
	}
	var seen []crdt.Entry
	res, err := s.WriteDecided(clock, "t", "a", func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
		seen = rec.Candidates("f")
		return nil, false, false
	}, func(*Batch, *WriteResult) error { t.Fatal("hook called for a declined write"); return nil })
	if err != nil || res != nil {
		t.Fatalf("declined: %v, %v; want nil, nil", res, err)
	}
	if len(seen) != 1 || seen[0].Dot() != w1.Dot() {
		t.Fatalf("decide saw %v, want the candidate of %v", seen, w1.Dot())
	}
	orig := crdt.Dot{Node: hlc.NodeID(42), Seq: 7}
	res, err = s.WriteDecided(clock, "t", "a", func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
		return []crdt.FieldValue{fv("f", 2)}, false, true
	}, func(b *Batch, r *WriteResult) error { b.PutRestamp(r.Write.Dot(), orig); return b.Err() })
	if err != nil {
		t.Fatal(err)
	}
	if res.Write.Seq != w1.Seq+1 {
		t.Fatalf("decided write has seq %d, want %d (a declined write uses none)", res.Write.Seq, w1.Seq+1)
	}
	if !res.Write.Ctx.Covers(w1.Dot()) {
		t.Fatalf("decided write's context %v does not cover %v", res.Write.Ctx, w1.Dot())
	}
	if _, err := s.WriteDecided(clock, "t", "a", func(*crdt.Record) ([]crdt.FieldValue, bool, bool) {
		return []crdt.FieldValue{{Name: "f", Value: crdt.Value{0xc1}}}, false, true
	}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a malformed decided value: %v, want ErrInvalid", err)
	}
	if _, err := s.WriteDecided(clock, "t", "a", nil, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no decide function: %v, want ErrInvalid", err)
	}
	if got, ok, err := s.Restamp(res.Write.Dot()); err != nil || !ok || got != orig {
		t.Fatalf("Restamp = %v, %v, %v; want %v", got, ok, err, orig)
	}
	if _, ok, err := s.Restamp(w1.Dot()); err != nil || ok {
		t.Fatalf("Restamp of an ordinary write = %v, %v; want none", ok, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: "/d", FS: fs, NoSync: true})
	defer s.Close()
	if got, ok, err := s.Restamp(res.Write.Dot()); err != nil || !ok || got != orig {
		t.Fatalf("after reopen: Restamp = %v, %v, %v; want %v", got, ok, err, orig)
	}
	rec, err := s.Get("t", "a")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("f"); v.String() != "2" {
		t.Fatalf("f = %v after reopen, want 2 (the malformed write stored nothing)", v)
	}
}
