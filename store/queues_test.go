package store

import (
	"fmt"
	"testing"
)

// TestNamedQueues: each named queue lists only its own entries, in order;
// ids are unique across the named queues and the unnamed one, also after
// a reopen that finds only named entries.
func TestNamedQueues(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir})
	const a, b QueueName = 'a', 'b'
	ids := map[uint64]bool{}
	if err := s.Update(func(bt *Batch) error {
		for i := 0; i < 3; i++ {
			ids[bt.EnqueueIn(a, []byte(fmt.Sprint("a", i)))] = true
			ids[bt.EnqueueIn(b, []byte(fmt.Sprint("b", i)))] = true
		}
		ids[bt.Enqueue([]byte("legacy"))] = true
		return bt.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 7 {
		t.Fatalf("ids %v: want 7 distinct", ids)
	}
	check := func(q QueueName, want ...string) {
		t.Helper()
		got, err := s.QueueOf(q, -1)
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, e := range got {
			vs = append(vs, string(e.Value))
		}
		if fmt.Sprint(vs) != fmt.Sprint(want) {
			t.Fatalf("queue %c: %v, want %v", q, vs, want)
		}
	}
	check(a, "a0", "a1", "a2")
	check(b, "b0", "b1", "b2")
	if old, err := s.Queue(-1); err != nil || len(old) != 1 || string(old[0].Value) != "legacy" {
		t.Fatalf("unnamed queue: %v %v, want the one legacy entry", old, err)
	}
	// Remove everything but the named queue b's last entry, then reopen:
	// the next id must still be new.
	qa, _ := s.QueueOf(a, -1)
	qb, _ := s.QueueOf(b, -1)
	old, _ := s.Queue(-1)
	if err := s.Update(func(bt *Batch) error {
		for _, e := range qa {
			bt.DequeueFrom(a, e.ID)
		}
		bt.DequeueFrom(b, qb[0].ID)
		bt.DequeueFrom(b, qb[1].ID)
		bt.Dequeue(old[0].ID)
		return bt.Err()
	}); err != nil {
		t.Fatal(err)
	}
	check(a)
	check(b, "b2")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: dir})
	defer s.Close()
	var next uint64
	if err := s.Update(func(bt *Batch) error { next = bt.EnqueueIn(a, []byte("a3")); return bt.Err() }); err != nil {
		t.Fatal(err)
	}
	if next <= qb[2].ID {
		t.Fatalf("id after reopen %d, want above %d (the last in use)", next, qb[2].ID)
	}
	check(a, "a3")
	check(b, "b2")
}
