package store

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

// TestWriteAfterCollectedDelete: node B, having seen node A's delete of a
// record, writes it again (its context names the delete); A collects the
// delete under the horizon, then applies B's write (the re-created state
// has not applied the delete: it was collected); then A writes it. A's write names its own delete as
// its predecessor, which is under the horizon and held but no longer in
// the state: it must apply, locally (it was silently left out of the
// record, so every later write of A to the record was lost too) and on a
// replica that collected the record as well (it was deferred for ever).
// Found by the fault harness (test/e2e TestFaults, seed 19406).
func TestWriteAfterCollectedDelete(t *testing.T) {
	a := mustOpen(t, Options{Dir: "/a", FS: vfs.NewMem(), NoSync: true})
	defer a.Close()
	ca := fakeClock(t0)
	b := newPeer(t, t0+1_000)
	c := newPeer(t, t0+2_000) // a third replica that collects too

	first, err := a.Write(ca, "t", "r", []crdt.FieldValue{fv("f", 1)}, false)
	if err != nil {
		t.Fatal(err)
	}
	del, err := a.Write(ca, "t", "r", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{b, c} {
		if _, err := p.s.ApplyRemote(p.clock, []*crdt.Write{first, del}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// B writes the record again, having seen the delete; then A and C
	// collect the delete (B's record is live again: nothing to collect).
	again := b.write(t, "t", "r", fv("g", 2))
	if again.Ctx.Get(a.NodeID()) != del.Seq {
		t.Fatalf("B's write has context %v; want it to name A's delete", again.Ctx)
	}
	horizon := crdt.VV{del.Dot()}
	for _, s := range []*Store{a, c.s} {
		if _, err := s.RaiseGCHorizon(horizon); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Collect(0); err != nil || n != 1 {
			t.Fatalf("Collect: %d, %v; want the deleted record collected", n, err)
		}
		res, err := s.ApplyRemote(fakeClock(t0+3_000), []*crdt.Write{again}, nil)
		if err != nil || res.Status[0] != Applied {
			t.Fatalf("B's write: %v, %v; want it applied", res.Status, err)
		}
	}

	// A writes it now: its context names its delete (collected).
	mine, err := a.Write(ca, "t", "r", []crdt.FieldValue{fv("f", 3)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if mine.Ctx.Get(a.NodeID()) != del.Seq {
		t.Fatalf("A's write has context %v; want it to name A's delete", mine.Ctx)
	}
	rec, err := a.Get("t", "r")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rec.Get("f"); !ok || !bytes.Equal(v, crdt.MustValue(3)) {
		t.Fatalf("A's own write is not in its record: f = %v (%v); record %+v", v, ok, rec)
	}
	if !rec.Applied.Covers(mine.Dot()) {
		t.Fatalf("A's record has not applied A's write %v: applied %v", mine.Dot(), rec.Applied)
	}
	// A's next write follows it.
	next, err := a.Write(ca, "t", "r", []crdt.FieldValue{fv("f", 4)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if next.Ctx.Get(a.NodeID()) != mine.Seq {
		t.Fatalf("A's next write has context %v; want it to name %v", next.Ctx, mine.Dot())
	}

	// B (which never collected the record) and C (which collected it,
	// then took B's write) apply A's writes and show what A shows; C's
	// state is A's (B keeps A's delete among its live deletes: it did not
	// collect it).
	want, err := a.Get("t", "r")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*peer{"B": b, "C": c} {
		res, err := p.s.ApplyRemote(p.clock, []*crdt.Write{mine, next}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range res.Status {
			if st != Applied {
				t.Fatalf("%s: A's write %d: %v; want applied", name, i, st)
			}
		}
		got, err := p.s.Get("t", "r")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Values(), want.Values()) {
			t.Fatalf("%s shows %v; A shows %v", name, got.Values(), want.Values())
		}
		if name == "C" && got.Digest() != want.Digest() {
			t.Fatalf("C's state differs from A's:\n%+v\n%+v", got, want)
		}
	}
}
