package store

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

// TestVerifyMergedThenCollected: a record merged whole (a feed entry of
// origin 0 names it), then deleted and collected under the horizon (its
// merge mark goes with its state): Verify accepts the feed entry of a
// record that is no longer stored.
func TestVerifyMergedThenCollected(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/db", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	clock := fakeClock(t0)
	p := newPeer(t, t0+1000)
	pw := p.write(t, "t", "r", fv("a", 1))
	rec, err := p.s.GetAny("t", "r")
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := s.MergeRecord(clock, "t", "r", rec); err != nil || !changed {
		t.Fatalf("merge: %v, %v", changed, err)
	}
	if _, err := s.ApplyRemote(clock, []*crdt.Write{pw}, nil); err != nil {
		t.Fatal(err)
	}
	del, err := s.Write(clock, "t", "r", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("before collection: %v", err)
	}
	var h crdt.VV
	h.Set(del.Dot())
	h.Set(pw.Dot())
	if _, err := s.RaiseGCHorizon(h); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Collect(0); err != nil || n != 1 {
		t.Fatalf("collect: %d, %v", n, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("after collection: %v", err)
	}
}
