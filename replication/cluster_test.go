package replication

import (
	"fmt"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestRandomCluster: a hub, 5 devices and 2 devices that only ever meet
// other devices; random writes, deletes and re-creates, random sessions
// that are cut at random points, devices going offline. After healing,
// every replica holds identical state within a bounded number of rounds,
// and every acknowledged write is either visible or superseded by a write
// that had seen it (the merge rule), never lost.
func TestRandomCluster(t *testing.T) {
	for run := 0; run < 8; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { randomCluster(t, 8, 600) })
	}
}

func randomCluster(t *testing.T, nnodes, steps int) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	var devices []*simNode
	for i := 0; i < nnodes-1; i++ {
		d := s.add(fmt.Sprintf("d%d", i), "device", FullScope())
		d.phys += int64(s.rng.IntN(2000)) - 1000 // skewed clocks
		d.local.ChunkBytes = 1 << (9 + s.rng.IntN(6))
		devices = append(devices, d)
	}
	peerOnly := map[*simNode]bool{devices[len(devices)-1]: true, devices[len(devices)-2]: true}
	// One device holds only table t (a partial replica); it meets the hub
	// and peers alike.
	partial := devices[1]
	partial.local.Scope = TablesScope("t")
	tables := []string{"t", "u"}
	offline := map[*simNode]bool{}
	all := append([]*simNode{hub}, devices...)
	var full []*simNode
	for _, n := range all {
		if n != partial {
			full = append(full, n)
		}
	}
	ids := []string{"a", "b", "c", "d", "e"}
	fields := []string{"f1", "f2", "f3"}
	for step := 0; step < steps; step++ {
		for _, n := range all {
			n.phys += int64(s.rng.IntN(20))
		}
		switch r := s.rng.IntN(10); {
		case r < 5: // a write
			n := devices[s.rng.IntN(len(devices))]
			if s.rng.IntN(5) == 0 {
				n = hub
			}
			id := ids[s.rng.IntN(len(ids))]
			table := tables[s.rng.IntN(2)]
			if n == partial {
				table = "t"
			}
			if s.rng.IntN(8) == 0 {
				s.write(n, table, id, nil, true)
				s.log = append(s.log, fmt.Sprintf("%s deletes %s/%s", n.name, table, id))
			} else {
				f := fields[s.rng.IntN(len(fields))]
				s.write(n, table, id, map[string]any{f: fmt.Sprintf("%s.%d", n.name, step)}, false)
				s.log = append(s.log, fmt.Sprintf("%s writes %s/%s.%s", n.name, table, id, f))
			}
		case r < 6: // offline / online
			d := devices[s.rng.IntN(len(devices))]
			offline[d] = !offline[d]
		default: // a session, maybe cut
			a, b := all[s.rng.IntN(len(all))], all[s.rng.IntN(len(all))]
			if a == b || offline[a] || offline[b] || (a == hub && peerOnly[b]) || (b == hub && peerOnly[a]) {
				continue
			}
			cut := 0
			if s.rng.IntN(3) == 0 {
				cut = 1 + s.rng.IntN(12)
			}
			_, _, err := s.session(a, b, cut)
			s.log = append(s.log, fmt.Sprintf("session %s-%s cut=%d: %v", a.name, b.name, cut, err))
			if err != nil && err != errCut {
				s.fail("session %s-%s: %v", a.name, b.name, err)
			}
		}
	}
	// Heal: everyone online; rounds of hub-device sessions and peer-only
	// devices syncing through a device, until identical.
	rounds := 0
	for ; rounds < 4; rounds++ {
		for _, d := range devices {
			if peerOnly[d] {
				s.mustSync(d, devices[0])
			} else {
				s.mustSync(d, hub)
			}
		}
		if converged(t, full) && converged(t, []*simNode{hub, partial}, "t") {
			break
		}
	}
	if !converged(t, full) {
		s.fail("full replicas not converged after %d healing rounds", rounds)
	}
	if !converged(t, []*simNode{hub, partial}, "t") {
		s.fail("partial replica's table differs from the hub's after %d rounds", rounds)
	}
	if ts, _ := partial.st.Tables(); len(ts) > 1 || len(ts) == 1 && ts[0] != "t" {
		s.fail("partial replica holds tables %v, its scope is t", ts)
	}
	t.Logf("converged after %d healing rounds", rounds+1)
	checkNoLoss(s, hub, all)
	for _, n := range all {
		if err := n.st.Verify(); err != nil {
			s.fail("%s: verify: %v", n.name, err)
		}
	}
}

func converged(t testing.TB, nodes []*simNode, tables ...string) bool {
	d := digest(t, nodes[0], tables...)
	for _, n := range nodes[1:] {
		if digest(t, n, tables...) != d {
			return false
		}
	}
	return true
}

// checkNoLoss: every acknowledged write's values are either live candidates
// in the converged state or superseded by a write that had seen them.
func checkNoLoss(s *sim, ref *simNode, nodes []*simNode) {
	var all []*crdt.Write
	for _, n := range nodes {
		all = append(all, n.acked...)
	}
	lost := 0
	for _, w := range all {
		rec, err := ref.st.Get(w.Table, w.ID)
		if err != nil {
			s.fail("record %s/%s of an acknowledged write is missing: %v", w.Table, w.ID, err)
		}
		names := []string{}
		for _, f := range w.Fields {
			names = append(names, f.Name)
		}
		for _, name := range names {
			live := false
			for _, c := range rec.Candidates(name) {
				if c.Dot() == w.Dot() {
					live = true
				}
			}
			if live {
				continue
			}
			if !supersededBySeen(all, w, name) {
				lost++
				s.t.Errorf("write %v field %s: neither live nor superseded by a write that saw it", w.Dot(), name)
			}
		}
	}
	if lost > 0 {
		s.fail("%d acknowledged field values lost", lost)
	}
}

func supersededBySeen(all []*crdt.Write, w *crdt.Write, field string) bool {
	for _, o := range all {
		if o.ID != w.ID || o.Table != w.Table || !o.Ctx.Covers(w.Dot()) {
			continue
		}
		if o.Delete {
			return true
		}
		for _, f := range o.Fields {
			if f.Name == field {
				return true
			}
		}
	}
	return false
}

var _ = hlc.NodeID(0)
