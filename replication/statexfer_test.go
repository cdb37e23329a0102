package replication

import (
	"fmt"
	"testing"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// fillHistory makes n records of fields fields at a, then updates single
// fields until a has made total writes.
func fillHistory(s *sim, a *simNode, table string, n, fields, total int) {
	for i := 0; i < n; i++ {
		f := map[string]any{}
		for j := 0; j < fields; j++ {
			f[fmt.Sprintf("f%02d", j)] = fmt.Sprintf("v%d-%d", i, j)
		}
		a.phys++
		s.write(a, table, fmt.Sprintf("r%04d", i), f, false)
	}
	for k := n; k < total; k++ {
		a.phys++
		s.write(a, table, fmt.Sprintf("r%04d", s.rng.IntN(n)), map[string]any{fmt.Sprintf("f%02d", s.rng.IntN(fields)): k}, false)
	}
}

// holdingsEqual reports whether a and b hold the same numbers of every
// origin (what is missing in one is missing in the other).
func holdingsEqual(a, b *simNode) string {
	ha, hb := a.st.Holdings(), b.st.Holdings()
	for o, h := range ha {
		if !h.Equal(hb[o]) && h.Max() > 0 {
			return fmt.Sprintf("origin %v: %s holds %v, %s holds %v", o, a.name, h, b.name, hb[o])
		}
	}
	for o, h := range hb {
		if !h.Equal(ha[o]) && h.Max() > 0 {
			return fmt.Sprintf("origin %v: %s holds %v, %s holds %v", o, a.name, ha[o], b.name, h)
		}
	}
	return ""
}

func TestStateTransferFreshDevice(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	fillHistory(s, a, "t", 100, 10, 3000)
	s.mustSync(a, hub)
	b := s.add("b", "device", FullScope())
	sb, sh, err := s.session(b, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fresh device: %d records as states, %d numbers covered, %d writes, %d bytes received", sb.StateRecords, sb.StateClaimed, sh.WritesSent, sb.BytesReceived)
	if sb.StateRecords != 100 || sb.StateClaimed != 3000 || sh.WritesSent != 0 {
		t.Fatalf("want 100 states covering 3000 writes and no write by the log; got %+v / %+v", sb, sh)
	}
	if digest(t, b) != digest(t, hub) {
		t.Fatal("device differs from the hub after state transfer")
	}
	if d := holdingsEqual(b, hub); d != "" {
		t.Fatal(d)
	}
	if err := b.st.Verify(); err != nil {
		t.Fatal(err)
	}
	// More writes at a flow by the log, to the hub and on to b.
	a.phys += 10
	s.write(a, "t", "r0001", map[string]any{"f00": "later"}, false)
	s.mustSync(a, hub)
	_, sh2, err := s.session(b, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sh2.WritesSent != 1 || sh2.StateRecordsSent != 0 {
		t.Fatalf("later session: %+v", sh2)
	}
	if digest(t, b) != digest(t, hub) {
		t.Fatal("differ after a later write")
	}
	_ = hlc.NodeID(0)
	_ = store.Held{}
}
