package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// within runs f and fails the test if it has not returned after d (a
// store wedged by a lock a panicking hook left held never returns).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v: the store is wedged", what, d)
	}
}

// callPanicking runs a store call whose hook panics and returns its error;
// a panic that escapes the store is turned into an error too, so that the
// test goes on to find whether the store still serves.
func callPanicking(t *testing.T, what string, f func() error) (err error) {
	t.Helper()
	within(t, 10*time.Second, what, func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("escaped the store: %v", r)
			}
		}()
		err = f()
	})
	return err
}

// TestHookPanicLeavesStoreUsable: a hook that panics, on every path that
// runs one (remote batches, local writes, decided writes and their decide
// function, merges with and without a change, Update), makes its call
// fail with ErrHookPanic and commit nothing, and the store goes on
// serving: the next write and read succeed (before, the write mutex was
// released by hand and stayed held after a panic: the next write hung).
func TestHookPanicLeavesStoreUsable(t *testing.T) {
	p := newPeer(t, t0)
	boom := func() { panic("hook bug") }
	cases := []struct {
		name string
		call func(s *Store, c *hlc.Clock) error
		// record the failed call would have written
		id string
	}{
		{"ApplyRemoteWith", func(s *Store, c *hlc.Clock) error {
			w := p.write(t, "t", "remote", fv("a", 1))
			_, err := s.ApplyRemoteWith(c, []*crdt.Write{w}, nil, func(*Batch, *Result) error { boom(); return nil })
			return err
		}, "remote"},
		{"WriteWith", func(s *Store, c *hlc.Clock) error {
			_, err := s.WriteWith(c, "t", "local", []crdt.FieldValue{fv("a", 1)}, false, func(*Batch, *WriteResult) error { boom(); return nil })
			return err
		}, "local"},
		{"WriteDecided/decide", func(s *Store, c *hlc.Clock) error {
			_, err := s.WriteDecided(c, "t", "decided", func(*crdt.Record) ([]crdt.FieldValue, bool, bool) { boom(); return nil, false, true }, nil)
			return err
		}, "decided"},
		{"WriteDecided/hook", func(s *Store, c *hlc.Clock) error {
			_, err := s.WriteDecided(c, "t", "decided", func(*crdt.Record) ([]crdt.FieldValue, bool, bool) {
				return []crdt.FieldValue{fv("a", 1)}, false, true
			}, func(*Batch, *WriteResult) error { boom(); return nil })
			return err
		}, "decided"},
		{"MergeRecordWith", func(s *Store, c *hlc.Clock) error {
			p.write(t, "t", "merged", fv("a", 1))
			rec, err := p.s.Get("t", "merged")
			if err != nil {
				return err
			}
			_, err = s.MergeRecordWith(c, "t", "merged", rec, func(*Batch, *crdt.Record) error { boom(); return nil })
			return err
		}, "merged"},
		{"MergeRecordWith/unchanged", func(s *Store, c *hlc.Clock) error {
			// Merging an empty state changes nothing; the hook still runs.
			_, err := s.MergeRecordWith(c, "t", "same", &crdt.Record{}, func(*Batch, *crdt.Record) error { boom(); return nil })
			return err
		}, "same"},
		{"Update", func(s *Store, c *hlc.Clock) error {
			return s.Update(func(b *Batch) error {
				b.Enqueue([]byte("x"))
				boom()
				return nil
			})
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, Options{Dir: "/db", FS: vfs.NewMem(), NoSync: true})
			defer func() {
				// A wedged store would block Close too.
				closed := make(chan struct{})
				go func() { s.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					t.Error("Close blocked: the store is wedged")
				}
			}()
			c := fakeClock(t0)
			if _, err := s.Write(c, "t", "before", []crdt.FieldValue{fv("a", 0)}, false); err != nil {
				t.Fatal(err)
			}
			feed, held := s.FeedHead(), s.Holdings()
			err := callPanicking(t, tc.name, func() error { return tc.call(s, c) })
			var hp *HookPanicError
			if !errors.Is(err, ErrHookPanic) || !errors.As(err, &hp) || hp.Value != "hook bug" || len(hp.Stack) == 0 {
				t.Errorf("error %v, want a *HookPanicError (ErrHookPanic) carrying the panic", err)
			}
			// Nothing of the call is committed.
			if tc.id != "" {
				if _, err := s.Get("t", tc.id); !errors.Is(err, ErrNotFound) {
					t.Fatalf("record %q after the failed call: %v, want ErrNotFound", tc.id, err)
				}
			}
			if s.FeedHead() != feed || !sameHoldings(s.Holdings(), held) {
				t.Fatalf("feed %d holdings %v after the failed call, want %d %v", s.FeedHead(), s.Holdings(), feed, held)
			}
			if q, err := s.Queue(10); err != nil || len(q) != 0 {
				t.Fatalf("queue after the failed call: %v %v, want empty", q, err)
			}
			// The store still serves writes and reads.
			within(t, 10*time.Second, "the next write", func() {
				if _, err := s.Write(c, "t", "after", []crdt.FieldValue{fv("a", 2)}, false); err != nil {
					t.Errorf("write after the panic: %v", err)
				}
				rec, err := s.Get("t", "after")
				if err != nil {
					t.Errorf("read after the panic: %v", err)
					return
				}
				if v, ok := rec.Get("a"); !ok || string(v) != string(crdt.MustValue(2)) {
					t.Errorf("read after the panic: a = %v %v", v, ok)
				}
				if err := s.Verify(); err != nil {
					t.Errorf("verify after the panic: %v", err)
				}
			})
		})
	}
}

func sameHoldings(a, b map[hlc.NodeID]Held) bool {
	if len(a) != len(b) {
		return false
	}
	for o, h := range a {
		if !h.Equal(b[o]) {
			return false
		}
	}
	return true
}

// TestHookReadsBatchView: a hook reads through its batch the records as
// the batch leaves them (the state it writes, not found once it collects
// one, the committed state of the others), the same state every reader
// sees once the batch commits, as its own copies.
func TestHookReadsBatchView(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/db", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	clk := fakeClock(t0)
	p := newPeer(t, t0)
	if _, err := s.Write(clk, "t", "other", []crdt.FieldValue{fv("a", "committed")}, false); err != nil {
		t.Fatal(err)
	}
	w1 := p.write(t, "t", "x", fv("a", 1))
	w2 := p.write(t, "t", "x", fv("b", 2))
	w3 := p.write(t, "t", "y", fv("a", 3))
	w4, err := p.s.Write(p.clock, "t", "y", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var seen, seenOther *crdt.Record
	_, err = s.ApplyRemoteWith(clk, []*crdt.Write{w1, w2, w3, w4}, nil, func(b *Batch, res *Result) error {
		var err error
		if seen, err = b.Get("t", "x"); err != nil {
			return err
		}
		// The committed state does not have the batch's writes yet.
		if _, err := s.Get("t", "x"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("Store.Get in the hook: %v, want ErrNotFound", err)
		}
		if seenOther, err = b.Get("t", "other"); err != nil {
			return err
		}
		if _, err := b.Get("t", "none"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("Get of a missing record: %v", err)
		}
		// The hook's copy is its own.
		seen.Fields = nil
		if again, _ := b.Get("t", "x"); len(again.Fields) != 2 {
			return fmt.Errorf("a record the hook got is shared: %d fields", len(again.Fields))
		}
		seen, _ = b.Get("t", "x")
		// What the hook removes, it no longer reads.
		if y, err := b.Get("t", "y"); err != nil || !y.Deleted() {
			return fmt.Errorf("Get of a record the batch deletes: %v %v", y, err)
		}
		b.CollectRecord("t", "y")
		if _, err := b.Get("t", "y"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("Get of a record the batch collected: %v", err)
		}
		b.SetHidden("t", "other", true, nil)
		if _, err := b.Get("t", "other"); !errors.Is(err, ErrOutOfScope) || !b.Hidden("t", "other") {
			return fmt.Errorf("Get of a record the batch hid: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.GetAny("t", "x")
	if err != nil {
		t.Fatal(err)
	}
	if seen.Digest() != after.Digest() {
		t.Fatalf("the hook read %v, the batch committed %v", seen, after)
	}
	if v, _ := seenOther.Get("a"); string(v) != string(crdt.MustValue("committed")) {
		t.Fatalf("the hook read the untouched record as %v", seenOther)
	}

	// A local write's hook reads the record as the write leaves it.
	_, err = s.WriteWith(clk, "t", "x", []crdt.FieldValue{fv("c", 4)}, false, func(b *Batch, r *WriteResult) error {
		got, err := b.Get("t", "x")
		if err != nil {
			return err
		}
		if got.Digest() != r.Record.Digest() || len(got.Fields) != 3 {
			return fmt.Errorf("the hook read %v, the write makes %v", got, r.Record)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBatchHiddenSkipped: a hook reads a record's hidden mark, with the
// writes skipped for it, as its batch leaves it (its hides, purges and
// shows counted), where Store.HiddenSkipped still shows the committed
// mark.
func TestBatchHiddenSkipped(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/db", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	clk := fakeClock(t0)
	if _, err := s.Write(clk, "t", "x", []crdt.FieldValue{fv("a", 1)}, false); err != nil {
		t.Fatal(err)
	}
	err := s.Update(func(b *Batch) error {
		if _, ok := b.HiddenSkipped("t", "x"); ok {
			return errors.New("x hidden before any hide")
		}
		b.SetHidden("t", "x", true, crdt.VV{{Node: 9, Seq: 2}})
		if sk, ok := b.HiddenSkipped("t", "x"); !ok || sk.Get(9) != 2 {
			return fmt.Errorf("after the batch's hide: %v %v", sk, ok)
		}
		if _, ok := s.HiddenSkipped("t", "x"); ok {
			return errors.New("Store.HiddenSkipped shows the uncommitted hide")
		}
		b.Purge("t", "x", crdt.VV{{Node: 8, Seq: 1}})
		if sk, ok := b.HiddenSkipped("t", "x"); !ok || sk.Get(9) != 2 || sk.Get(8) != 1 {
			return fmt.Errorf("after the batch's purge: %v %v", sk, ok)
		}
		b.SetHidden("t", "x", false, nil)
		if sk, ok := b.HiddenSkipped("t", "x"); ok {
			return fmt.Errorf("after the batch's show: %v", sk)
		}
		b.SetHidden("t", "x", true, crdt.VV{{Node: 9, Seq: 3}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(b *Batch) error {
		sk, ok := b.HiddenSkipped("t", "x")
		if !ok || sk.Get(9) != 3 {
			return fmt.Errorf("committed mark read through a batch: %v %v", sk, ok)
		}
		b.CollectRecord("t", "x")
		if _, ok := b.HiddenSkipped("t", "x"); ok {
			return errors.New("hidden after the batch collected it")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sk, ok := s.HiddenSkipped("t", "x"); ok {
		t.Fatalf("collected record still hidden: %v", sk)
	}
}
