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

func farWrite(origin hlc.NodeID, seq uint64) *crdt.Write {
	return &crdt.Write{Table: "t", ID: fmt.Sprintf("r%d", seq), Origin: origin, Seq: seq,
		TS: hlc.New(t0+3_600_000+int64(seq), 0), Fields: []crdt.FieldValue{fv("f", int(seq))}}
}

// TestParkedBoundAndCounts: beyond MaxParkedPerOrigin a far-ahead write is
// ParkRefused (not stored, not held); the counts per origin are kept
// across a reopen, a re-offered parked write is not counted twice, and a
// release makes room.
func TestParkedBoundAndCounts(t *testing.T) {
	fs := vfs.NewMem()
	o := Options{Dir: "/s", FS: fs, NoSync: true, MaxParkedPerOrigin: 3}
	s := mustOpen(t, o)
	c := fakeClock(t0)
	var ws []*crdt.Write
	for i := uint64(1); i <= 5; i++ {
		ws = append(ws, farWrite(77, i))
	}
	ws = append(ws, farWrite(78, 1))
	res, err := s.ApplyRemote(c, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Status); got != "[parked parked parked park refused park refused parked]" || len(res.ParkRefused) != 2 {
		t.Fatalf("statuses %s, refused %v", got, res.ParkRefused)
	}
	if h := s.HeldOf(77); h.Contains(4) {
		t.Errorf("a refused write is held: %v", h)
	}
	check := func(what string, total int, by map[hlc.NodeID]int) {
		t.Helper()
		n, b := s.ParkedCount()
		if n != total || fmt.Sprint(b) != fmt.Sprint(by) {
			t.Errorf("%s: %d %v, want %d %v", what, n, b, total, by)
		}
	}
	check("after the batch", 4, map[hlc.NodeID]int{77: 3, 78: 1})
	// Re-offered: still parked, not counted twice, the bound unchanged.
	res, err = s.ApplyRemote(c, []*crdt.Write{farWrite(77, 1), farWrite(77, 4)}, nil)
	if err != nil || fmt.Sprint(res.Status) != "[parked park refused]" {
		t.Fatalf("re-offered: %v %v", res, err)
	}
	check("re-offered", 4, map[hlc.NodeID]int{77: 3, 78: 1})
	s.Close()
	s = mustOpen(t, o)
	defer func() { s.Close() }()
	check("reopened", 4, map[hlc.NodeID]int{77: 3, 78: 1})
	// Paging.
	p1, more, err := s.ListParkedPage(0, 0, 3)
	if err != nil || len(p1) != 3 || !more {
		t.Fatalf("page 1: %d %v %v", len(p1), more, err)
	}
	last := p1[2].Write
	p2, more, err := s.ListParkedPage(last.Origin, last.Seq, 3)
	if err != nil || len(p2) != 1 || more || p2[0].Write.Origin != 78 {
		t.Fatalf("page 2: %+v %v %v", p2, more, err)
	}
	if p, err := s.GetParked(77, 2); err != nil || p.Write.Seq != 2 {
		t.Fatalf("GetParked: %v %v", p, err)
	}
	// A release makes room for one more.
	if _, err := s.ReleaseParked(77, 1); err != nil {
		t.Fatal(err)
	}
	check("released", 3, map[hlc.NodeID]int{77: 2, 78: 1})
	if res, err := s.ApplyRemote(c, []*crdt.Write{farWrite(77, 4), farWrite(77, 5)}, nil); err != nil || fmt.Sprint(res.Status) != "[parked park refused]" {
		t.Fatalf("after a release: %v %v", res, err)
	}
	check("refilled", 4, map[hlc.NodeID]int{77: 3, 78: 1})
}

// TestParkedCountIsCheap: counting 50,000 parked writes takes no scan
// (compared with listing them).
func TestParkedCountIsCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: parks 50,000 writes")
	}
	s := mustOpen(t, Options{Dir: "/s", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	c := fakeClock(t0)
	const n = 50_000
	var ws []*crdt.Write
	for i := uint64(1); i <= n; i++ {
		ws = append(ws, farWrite(77, i))
	}
	if _, err := s.ApplyRemote(c, ws, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	total, _ := s.ParkedCount()
	count := time.Since(start)
	start = time.Now()
	page, _, err := s.ListParkedPage(0, 0, 100)
	pageT := time.Since(start)
	start = time.Now()
	all, err2 := s.ListParked()
	list := time.Since(start)
	if total != n || err != nil || err2 != nil || len(page) != 100 || len(all) != n {
		t.Fatalf("count %d, page %d (%v), list %d (%v)", total, len(page), err, len(all), err2)
	}
	t.Logf("%d parked writes: count %v, one page of 100 %v, full list %v", n, count, pageT, list)
}

// TestParkedDroppedWhenHeld: a parked write whose number becomes held
// without it (a state claim: the transferred record states include it;
// an empty range, in a later batch or in the batch that parked it) is no
// longer parked: it could never apply (a held number is a duplicate) and
// no peer would offer it again. The counts, the list, Verify and a reopen
// agree. A store that kept such writes (earlier versions did, after a
// state claim) fails Verify, and Open drops them.
func TestParkedDroppedWhenHeld(t *testing.T) {
	fs := vfs.NewMem()
	o := Options{Dir: "/s", FS: fs, NoSync: true}
	s := mustOpen(t, o)
	defer func() { s.Close() }()
	c := fakeClock(t0)
	ws := []*crdt.Write{farWrite(77, 1), farWrite(77, 2), farWrite(77, 3), farWrite(77, 4), farWrite(78, 1)}
	if res, err := s.ApplyRemote(c, ws, nil); err != nil || len(res.Parked) != 5 {
		t.Fatalf("park: %+v %v", res, err)
	}
	check := func(what string, total int, by map[hlc.NodeID]int, list string) {
		t.Helper()
		n, b := s.ParkedCount()
		ps, err := s.ListParked()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, fmt.Sprintf("%d:%d", p.Write.Origin, p.Write.Seq))
		}
		if n != total || fmt.Sprint(b) != fmt.Sprint(by) || fmt.Sprint(got) != list {
			t.Errorf("%s: %d %v %v, want %d %v %s", what, n, b, got, total, by, list)
		}
		if err := s.Verify(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	check("parked", 5, map[hlc.NodeID]int{77: 4, 78: 1}, "[77:1 77:2 77:3 77:4 78:1]")

	// Held through states a peer transferred.
	if _, err := s.ClaimState(map[hlc.NodeID][]SeqRange{77: {{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	check("state claim", 3, map[hlc.NodeID]int{77: 2, 78: 1}, "[77:3 77:4 78:1]")
	// Held as an empty range.
	if _, err := s.ApplyRemote(c, nil, map[hlc.NodeID][]SeqRange{77: {{3, 3}}}); err != nil {
		t.Fatal(err)
	}
	check("empty range", 2, map[hlc.NodeID]int{77: 1, 78: 1}, "[77:4 78:1]")
	// Parked and held as empty in one batch.
	if res, err := s.ApplyRemote(c, []*crdt.Write{farWrite(79, 1)}, map[hlc.NodeID][]SeqRange{79: {{1, 1}}}); err != nil || len(res.Parked) != 1 {
		t.Fatalf("park and hold: %+v %v", res, err)
	}
	check("one batch", 2, map[hlc.NodeID]int{77: 1, 78: 1}, "[77:4 78:1]")
	s.Close()
	s = mustOpen(t, o)
	check("reopened", 2, map[hlc.NodeID]int{77: 1, 78: 1}, "[77:4 78:1]")

	// A held parked write left by an earlier version: Verify names it,
	// Open drops it.
	enc, err := crdt.AppendWrite(nil, farWrite(77, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.commitBook(func(b *Batch) error {
		b.setEncoded(parkedKey(77, 2), &parkedValue{Write: enc, Reason: "old", Time: t0})
		return b.err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a held parked write: %v", err)
	}
	s.Close()
	s = mustOpen(t, o)
	check("reopened after an earlier version", 2, map[hlc.NodeID]int{77: 1, 78: 1}, "[77:4 78:1]")
}
