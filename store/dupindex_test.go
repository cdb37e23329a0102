package store

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func digest(c byte) []byte { return bytes.Repeat([]byte{c}, KeyDigestLen) }

// TestKeyIndex: entries filed under a digest are found by it (and only
// by it, per table), the reverse entry names the digest, a delete removes
// both, ClearKeyIndex one table's index; bad digests are refused; a
// reopen keeps everything.
func TestKeyIndex(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/d", FS: fs, NoSync: true})
	put := func(fill func(b *Batch)) {
		t.Helper()
		if err := s.Update(func(b *Batch) error { fill(b); return b.Err() }); err != nil {
			t.Fatal(err)
		}
	}
	put(func(b *Batch) {
		b.PutKeyIndex("c", "b", digest(1))
		b.PutKeyIndex("c", "a", digest(1))
		b.PutKeyIndex("c", "z", digest(2))
		b.PutKeyIndex("c2", "y", digest(1))
		b.PutKeyIndexDef("c", []byte(`["email"]`))
	})
	ids, err := s.KeyIndexIDs("c", digest(1), 0)
	if err != nil || !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Fatalf("ids = %v, %v; want [a b]", ids, err)
	}
	if ids, _ := s.KeyIndexIDs("c", digest(1), 1); !reflect.DeepEqual(ids, []string{"a"}) {
		t.Fatalf("limit 1: %v", ids)
	}
	if d, ok, err := s.KeyIndexOf("c", "z"); err != nil || !ok || !bytes.Equal(d, digest(2)) {
		t.Fatalf("KeyIndexOf = %x, %v, %v", d, ok, err)
	}
	put(func(b *Batch) { b.DeleteKeyIndex("c", "a", digest(1)) })
	if ids, _ := s.KeyIndexIDs("c", digest(1), 0); !reflect.DeepEqual(ids, []string{"b"}) {
		t.Fatalf("after delete: %v", ids)
	}
	if _, ok, _ := s.KeyIndexOf("c", "a"); ok {
		t.Fatal("reverse entry survived the delete")
	}
	if err := s.Update(func(b *Batch) error { b.PutKeyIndex("c", "a", []byte("short")); return b.Err() }); err == nil {
		t.Fatal("a short digest was accepted")
	}
	s.Close()
	s = mustOpen(t, Options{Dir: "/d", FS: fs, NoSync: true})
	defer s.Close()
	if def, ok, _ := s.KeyIndexDef("c"); !ok || string(def) != `["email"]` {
		t.Fatalf("def after reopen = %q, %v", def, ok)
	}
	if ts, err := s.KeyIndexTables(); err != nil || !reflect.DeepEqual(ts, []string{"c"}) {
		t.Fatalf("KeyIndexTables = %v, %v", ts, err)
	}
	put(func(b *Batch) { b.ClearKeyIndex("c") })
	for _, d := range [][]byte{digest(1), digest(2)} {
		if ids, _ := s.KeyIndexIDs("c", d, 0); len(ids) != 0 {
			t.Fatalf("cleared table still has %v", ids)
		}
	}
	if _, ok, _ := s.KeyIndexDef("c"); ok {
		t.Fatal("definition survived ClearKeyIndex")
	}
	if ids, _ := s.KeyIndexIDs("c2", digest(1), 0); !reflect.DeepEqual(ids, []string{"y"}) {
		t.Fatalf("another table's index was cleared: %v", ids)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestDupPending: pending flags read back in key order and go once
// deleted.
func TestDupPending(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/p", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	if err := s.Update(func(b *Batch) error {
		b.PutDupPending("t", "b", []byte("2"))
		b.PutDupPending("t", "a", []byte("1"))
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.DupPendings(0)
	if err != nil || len(ps) != 2 || ps[0].ID != "a" || string(ps[0].Value) != "1" || ps[1].ID != "b" {
		t.Fatalf("pendings = %+v, %v", ps, err)
	}
	if err := s.Update(func(b *Batch) error { b.DeleteDupPending("t", "a"); return b.Err() }); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.DupPendings(0); len(ps) != 1 || ps[0].ID != "b" {
		t.Fatalf("after delete: %+v", ps)
	}
}

// TestConsumer: a consumer's state and outcomes read back; outcomes
// newest first, bounded by before and limit, pruned below a position.
func TestConsumer(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/w", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	if _, ok, err := s.Consumer("hook"); ok || err != nil {
		t.Fatalf("fresh consumer: %v, %v", ok, err)
	}
	if err := s.Update(func(b *Batch) error {
		b.PutConsumer("hook", []byte("state"))
		for n := uint64(1); n <= 5; n++ {
			b.PutConsumerOutcome("hook", n, []byte{byte('0' + n)})
		}
		b.PutConsumerOutcome("other", 9, []byte("x"))
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Consumer("hook"); !ok || err != nil || string(v) != "state" {
		t.Fatalf("state = %q, %v, %v", v, ok, err)
	}
	os, err := s.ConsumerOutcomes("hook", 0, 2)
	if err != nil || len(os) != 2 || os[0].Feed != 5 || os[1].Feed != 4 || string(os[0].Value) != "5" {
		t.Fatalf("outcomes = %+v, %v", os, err)
	}
	if os, _ := s.ConsumerOutcomes("hook", 3, 0); len(os) != 2 || os[0].Feed != 2 {
		t.Fatalf("before 3: %+v", os)
	}
	if err := s.Update(func(b *Batch) error { b.PruneConsumerOutcomes("hook", 4); return b.Err() }); err != nil {
		t.Fatal(err)
	}
	if os, _ := s.ConsumerOutcomes("hook", 0, 0); len(os) != 2 || os[1].Feed != 4 {
		t.Fatalf("after prune: %+v", os)
	}
	if os, _ := s.ConsumerOutcomes("other", 0, 0); len(os) != 1 {
		t.Fatalf("another consumer's outcomes were pruned: %+v", os)
	}
	if err := s.Update(func(b *Batch) error { b.PutConsumer("bad name", nil); return b.Err() }); err == nil {
		t.Fatal("a bad consumer name was accepted")
	}
}
