package store

import (
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

// TestWriteAfterCollectionConverges: replica R collects a deleted record
// under the tombstone horizon, then writes it again. Its write must carry
// what R had seen of the record (the collected state's causal context),
// so that every other replica ends with R's state whatever it held and
// whatever the order: one that kept the tombstone, one that applies the
// write before the delete arrives, one that collected too. With an empty
// context (the write made over no state) the first two kept the delete
// and the write as concurrent candidates (an existence conflict, a
// manual table's "_exists") where R shows the write alone. Both deletes
// of another origin and R's own are covered. Found by the fault harness
// (test/e2e TestFaults, seed 20261207).
func TestWriteAfterCollectionConverges(t *testing.T) {
	for _, ownDelete := range []bool{false, true} {
		name := "delete by another origin"
		if ownDelete {
			name = "delete by the writer"
		}
		t.Run(name, func(t *testing.T) {
			r := mustOpen(t, Options{Dir: "/r", FS: vfs.NewMem(), NoSync: true})
			defer r.Close()
			cr := fakeClock(t0 + 10_000)
			a := newPeer(t, t0)
			kept := newPeer(t, t0+1_000)      // keeps the tombstone
			early := newPeer(t, t0+2_000)     // gets R's write before the delete
			collected := newPeer(t, t0+3_000) // collects the record too

			// The record's history up to its delete, made by a (or by r).
			var hist []*crdt.Write
			if ownDelete {
				w1, err := r.Write(cr, "t", "x", []crdt.FieldValue{fv("f", 1), fv("h", 1)}, false)
				if err != nil {
					t.Fatal(err)
				}
				del, err := r.Write(cr, "t", "x", nil, true)
				if err != nil {
					t.Fatal(err)
				}
				hist = []*crdt.Write{w1, del}
			} else {
				w1 := a.write(t, "t", "x", fv("f", 1), fv("h", 1))
				del, err := a.s.Write(a.clock, "t", "x", nil, true)
				if err != nil {
					t.Fatal(err)
				}
				hist = []*crdt.Write{w1, del}
				if _, err := r.ApplyRemote(cr, hist, nil); err != nil {
					t.Fatal(err)
				}
			}
			del := hist[len(hist)-1]
			for _, p := range []*peer{kept, collected} {
				if _, err := p.s.ApplyRemote(p.clock, hist, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := early.s.ApplyRemote(early.clock, hist[:1], nil); err != nil {
				t.Fatal(err)
			}
			horizon := crdt.VV{del.Dot()}
			for _, s := range []*Store{r, collected.s} {
				if _, err := s.RaiseGCHorizon(horizon); err != nil {
					t.Fatal(err)
				}
				if n, err := s.Collect(0); err != nil || n != 1 {
					t.Fatalf("Collect: %d, %v; want the deleted record collected", n, err)
				}
			}

			// R writes the record again, over no state.
			again, err := r.Write(cr, "t", "x", []crdt.FieldValue{fv("g", 2)}, false)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Ctx.Covers(del.Dot()) {
				t.Errorf("R's write after collection has context %v: it does not name the delete %v it had seen", again.Ctx, del.Dot())
			}
			want, err := r.Get("t", "x")
			if err != nil {
				t.Fatal(err)
			}
			if want.HasConflict() || len(want.Exist) != 1 {
				t.Fatalf("R's own state has a conflict: %+v", want)
			}

			apply := func(p *peer, ws ...*crdt.Write) {
				t.Helper()
				res, err := p.s.ApplyRemote(p.clock, ws, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i, st := range res.Status {
					if st != Applied {
						t.Fatalf("write %v: %v; want applied", ws[i].Dot(), st)
					}
				}
			}
			apply(kept, again)
			if ownDelete {
				// R's write follows R's delete: it waits for it.
				res, err := early.s.ApplyRemote(early.clock, []*crdt.Write{again}, nil)
				if err != nil || res.Status[0] != Deferred {
					t.Fatalf("R's write before R's delete: %v, %v; want deferred", res.Status, err)
				}
				apply(early, hist[1:]...)
				apply(early, again)
			} else {
				apply(early, again)
				apply(early, hist[1:]...) // the delete, after R's write
			}
			apply(collected, again)
			for name, p := range map[string]*peer{"kept the tombstone": kept, "write before delete": early, "collected": collected} {
				got, err := p.s.Get("t", "x")
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got.HasConflict() || !got.Exists() || len(got.Exist) != 1 {
					t.Errorf("%s: existence %+v (conflict %v); R shows %+v alone", name, got.Exist, got.HasConflict(), want.Exist)
				}
				if !reflect.DeepEqual(got.Values(), want.Values()) {
					t.Errorf("%s shows %v; R shows %v", name, got.Values(), want.Values())
				}
			}
			// A replica that collected the record holds R's state exactly.
			if got, _ := collected.s.Get("t", "x"); got != nil && got.Digest() != want.Digest() {
				t.Errorf("the collecting replica's state differs from R's:\n%+v\n%+v", got, want)
			}

			// R's next write follows its own.
			next, err := r.Write(cr, "t", "x", []crdt.FieldValue{fv("g", 3)}, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*peer{kept, early, collected} {
				apply(p, next)
			}
		})
	}
}
