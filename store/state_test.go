package store

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestStateMergeAndClaim: a replica merges a peer's record states in one
// batch and then holds the numbers they include with no log entry: its
// holdings, the s keys and Verify agree, across a reopen; a later write
// of the origin applies on the merged state and a re-sent one is a
// duplicate; claims of its own origin or of zero-width ranges are
// refused; a state beyond the clock bound is refused alone.
func TestStateMergeAndClaim(t *testing.T) {
	p := newPeer(t, t0)
	for i := 0; i < 30; i++ {
		p.write(t, "t", []string{"a", "b", "c"}[i%3], fv("f", i))
	}
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	var recs []StateRecord
	for _, id := range []string{"a", "b", "c"} {
		rec, err := p.s.Get("t", id)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, StateRecord{Table: "t", ID: id, Rec: rec})
	}
	changed, refused, err := s.MergeStates(clock, recs, func(b ScopeBatch, table, id string, rec *crdt.Record) error { return nil })
	if err != nil || changed != 3 || len(refused) != 0 {
		t.Fatalf("merge: %d changed, refused %v, %v", changed, refused, err)
	}
	origin := p.s.NodeID()
	if _, err := s.ClaimState(map[hlc.NodeID][]SeqRange{s.NodeID(): {{1, 3}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a claim of the store's own origin: %v", err)
	}
	if _, err := s.ClaimState(map[hlc.NodeID][]SeqRange{origin: {{5, 4}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty range: %v", err)
	}
	got, err := s.ClaimState(map[hlc.NodeID][]SeqRange{origin: {{1, 30}}})
	if err != nil || got[origin].Contig != 30 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if h := s.HeldOf(origin); h.Contig != 30 {
		t.Fatalf("holds %v", h)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	// A second claim over the same numbers adds nothing.
	if got, err := s.ClaimState(map[hlc.NodeID][]SeqRange{origin: {{1, 30}}}); err != nil || got[origin].Max() != 0 {
		t.Fatalf("second claim: %v %v", got, err)
	}
	w := p.write(t, "t", "a", fv("f", "later"))
	res, err := s.ApplyRemote(clock, append(p.stream(t, 29), w), nil)
	if err != nil || res.Status[0] != Duplicate || res.Status[1] != Applied {
		t.Fatalf("re-sent and later writes: %+v %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	defer s.Close()
	if h := s.HeldOf(origin); h.Contig != 31 {
		t.Fatalf("after reopen holds %v", h)
	}
	sh, err := s.StateHeld()
	if err != nil || sh[origin].Contig != 30 {
		t.Fatalf("state held %v %v", sh, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Get("t", "a")
	want, _ := p.s.Get("t", "a")
	if rec.Digest() != want.Digest() {
		t.Fatal("the record differs from the peer's")
	}
	// A state stamped far ahead is refused alone.
	far := &crdt.Record{}
	fw := &crdt.Write{Table: "t", ID: "z", Origin: origin, Seq: 99, TS: hlc.New(t0+3_600_000, 0), Fields: []crdt.FieldValue{fv("f", 1)}}
	far.Apply(fw, nil)
	near, _ := p.s.Get("t", "b")
	changed, refused, err = s.MergeStates(fakeClock(t0), []StateRecord{{"t", "z", far}, {"t", "b", near}}, nil)
	if err != nil || len(refused) != 1 || refused[0] != 0 {
		t.Fatalf("far state: changed %d refused %v %v", changed, refused, err)
	}
	if _, err := s.GetAny("t", "z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused state was merged: %v", err)
	}
}
