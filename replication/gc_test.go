package replication

import (
	"errors"
	"testing"
	"time"

	"github.com/replicad/replicad/store"
)

// gcSim wires a Collector to the sim's hub.
func gcSim(t *testing.T) (*sim, *simNode, *Collector) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	c := NewCollector(hub.st, 24*time.Hour, func() time.Time { return time.UnixMilli(hub.phys) })
	hub.local.OnPeerHave = c.Observe
	return s, hub, c
}

// round: every listed device syncs with the hub, and the hub's collector
// steps after each session.
func gcRound(t *testing.T, s *sim, hub *simNode, c *Collector, devs ...*simNode) {
	t.Helper()
	for _, d := range devs {
		s.mustSync(d, hub)
		if _, err := c.Step(); err != nil {
			t.Fatal(err)
		}
	}
}

func collected(t *testing.T, n *simNode, table, id string) bool {
	t.Helper()
	_, err := n.st.GetAny(table, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	ts, _ := n.st.ListTombstones(table, 100)
	for _, x := range ts {
		if x.ID == id {
			return false
		}
	}
	return err != nil
}

// TestTombstoneCollection: a delete is collected on every replica once
// all of them have acknowledged it, never before: not while a replica that
// could still send a concurrent write is away.
func TestTombstoneCollection(t *testing.T) {
	s, hub, c := gcSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "device", FullScope())
	away := s.add("away", "device", FullScope())
	s.write(a, "t", "r", map[string]any{"f": 1}, false)
	s.write(a, "t", "keep", map[string]any{"f": 1}, false)
	gcRound(t, s, hub, c, a, b, away, a, b, away)
	// a deletes r; "away" goes offline (it may write r concurrently).
	a.phys += 10
	s.write(a, "t", "r", nil, true)
	away.phys += 50 // its clock is later: its write wins over the delete
	s.write(away, "t", "r", map[string]any{"g": "written offline"}, false)
	for i := 0; i < 6; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a, b)
	}
	if collected(t, hub, "t", "r") || collected(t, a, "t", "r") {
		t.Fatalf("the tombstone was collected while a replica that could send a concurrent write was away (collector: %s)", c.Status())
	}
	// away comes back: its concurrent write arrives and wins (stamped after
	// the delete), so the record exists again with only that value.
	away.phys += 100
	for i := 0; i < 4; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a, b, away)
	}
	for _, n := range []*simNode{hub, a, b, away} {
		rec, err := n.st.Get("t", "r")
		if err != nil || !rec.Exists() {
			h, _ := n.st.GCHorizon()
			any, _ := n.st.GetAny("t", "r")
			t.Fatalf("%s: the concurrent write was lost: %v (horizon %v, state %+v, holdings %v)", n.name, err, h, any, n.st.Holdings())
		}
		if v, _ := rec.Get("g"); v.String() != `"written offline"` {
			t.Fatalf("%s: r.g = %s", n.name, v)
		}
		if _, ok := rec.Get("f"); ok {
			t.Fatalf("%s: the delete's cleared value came back", n.name)
		}
	}
	// Now delete it for good: everyone acknowledges and it is collected
	// everywhere.
	s.write(b, "t", "r", nil, true)
	for i := 0; i < 6; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a, b, away)
	}
	for _, n := range []*simNode{hub, a, b, away} {
		if !collected(t, n, "t", "r") {
			h, _ := n.st.GCHorizon()
			t.Fatalf("%s: r not collected (horizon %v, collector: %s)", n.name, h, c.Status())
		}
		if _, err := n.st.Get("t", "keep"); err != nil {
			t.Fatalf("%s: a live record was collected: %v", n.name, err)
		}
		if err := n.st.Verify(); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
	}
	if !converged(t, []*simNode{hub, a, b, away}) {
		t.Fatal("replicas differ after collection")
	}
	// An old write to r sent again is a duplicate: r does not come back.
	if _, _, err := s.session(a, hub, 0); err != nil {
		t.Fatal(err)
	}
	if !collected(t, hub, "t", "r") {
		t.Fatal("r came back")
	}
}

// TestForgottenReplicaResyncs: a replica away longer than ForgetAfter no
// longer holds collection back; when it returns, holding a record deleted
// and collected meanwhile, it is refused until it resyncs from scratch, and
// the deleted record does not come back.
func TestForgottenReplicaResyncs(t *testing.T) {
	s, hub, c := gcSim(t)
	a := s.add("a", "device", FullScope())
	gone := s.add("gone", "device", FullScope())
	s.write(a, "t", "r", map[string]any{"f": 1}, false)
	gcRound(t, s, hub, c, a, gone, a, gone)
	s.write(a, "t", "r", nil, true)
	for i := 0; i < 3; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a)
	}
	if collected(t, hub, "t", "r") {
		t.Fatal("collected while a known replica was away")
	}
	hub.phys += int64(25 * time.Hour / time.Millisecond) // beyond ForgetAfter
	for i := 0; i < 4; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a)
	}
	if !collected(t, hub, "t", "r") {
		t.Fatalf("not collected after the away replica was forgotten (collector: %s)", c.Status())
	}
	// gone returns with r still alive in its store.
	_, _, err := s.session(gone, hub, 0)
	var re *RefusedError
	if !errors.As(err, &re) && !errors.Is(err, ErrResyncRequired) {
		t.Fatalf("a forgotten replica was not refused: %v", err)
	}
	if !collected(t, hub, "t", "r") {
		t.Fatal("the forgotten replica resurrected r")
	}
	// It resyncs from scratch (a fresh store, as replicad reset does).
	fresh := s.add("gone-reset", "device", FullScope())
	s.mustSync(fresh, hub)
	if _, err := fresh.st.Get("t", "r"); err == nil {
		t.Fatal("r came back through the resync")
	}
}
