package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func TestDropEmpties(t *testing.T) {
	s := mustOpen(t, Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true})
	defer s.Close()
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	const o = hlc.NodeID(0x77)
	w := func(seq uint64) *crdt.Write {
		return &crdt.Write{Origin: o, Seq: seq, TS: clock.Now(), Table: "t", ID: fmt.Sprint("r", seq), Fields: []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(int64(seq))}}}
	}
	// Writes 1-2 logged, 3-1000 declared empty, 1200-1300 empty, 1301 logged.
	if _, err := s.ApplyRemote(clock, []*crdt.Write{w(1), w(2)}, map[hlc.NodeID][]SeqRange{o: {{Lo: 3, Hi: 1000}, {Lo: 1200, Hi: 1300}}}); err != nil {
		t.Fatal(err)
	}
	if got := s.HeldOf(o).Max(); got != 1300 {
		t.Fatalf("held max %d", got)
	}
	// Within a range first: 500-1250 of the empties only.
	var within Held
	within.Add(500, 1250)
	dropped, err := s.DropEmpties(o, &within)
	if err != nil {
		t.Fatal(err)
	}
	if count(dropped) != 501+51 || dropped.Contains(499) || !dropped.Contains(1250) || dropped.Contains(1251) {
		t.Fatalf("dropped within 500-1250: %v", dropped)
	}
	if h := s.HeldOf(o); h.Contains(500) || !h.Contains(499) || !h.Contains(1251) || h.Contains(1100) {
		t.Fatalf("held after the partial drop: %v", h)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	dropped, err = s.DropEmpties(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if count(dropped) != 497+50 || dropped.Contains(2) || dropped.Contains(1001) || !dropped.Contains(1300) {
		t.Fatalf("dropped %v", dropped)
	}
	if h := s.HeldOf(o); h.Contig != 2 || len(h.Ranges) != 0 {
		t.Fatalf("held after the drop: %v", h)
	}
	// The real writes apply now.
	res, err := s.ApplyRemote(clock, []*crdt.Write{w(3), w(4)}, nil)
	if err != nil || res.Applied != 2 {
		t.Fatalf("real writes after the drop: %+v %v", res, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.DropEmpties(o, nil); err != nil || d.Max() != 0 {
		t.Fatalf("nothing left to drop: %v %v", d, err)
	}
	// Every origin at once.
	if _, err := s.ApplyRemote(clock, nil, map[hlc.NodeID][]SeqRange{o: {{Lo: 5000, Hi: 5001}}, o + 1: {{Lo: 1, Hi: 7}}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.DropAllEmpties()
	if err != nil || len(all) != 2 || count(all[o]) != 2 || count(all[o+1]) != 7 {
		t.Fatalf("dropped %v, %v", all, err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropEmpties(s.NodeID(), nil); err == nil {
		t.Fatal("dropped empties of the node's own origin")
	}
}

func count(h Held) uint64 {
	n := h.Contig
	for _, r := range h.Ranges {
		n += r.Hi - r.Lo + 1
	}
	return n
}
