package replication

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestRandomCluster: a hub, 5 devices and 2 devices that only ever meet
// other devices; random writes, deletes and re-creates, random sessions
// that are cut at random points, devices going offline. After healing,
// every replica holds identical state within a bounded number of rounds,
// and every acknowledged write is either visible or superseded by a write
// that had seen it (the merge rule), never lost.
var (
	flagClusterRuns  = flag.Int("sync.runs", 8, "number of TestRandomCluster runs")
	flagClusterSteps = flag.Int("sync.steps", 600, "steps per TestRandomCluster run")
)

func TestRandomCluster(t *testing.T) {
	for run := 0; run < *flagClusterRuns; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { randomCluster(t, 8, *flagClusterSteps, false) })
	}
}

// TestRandomClusterFiltered adds a device whose scope is a field filter,
// so that records enter and leave its scope as other replicas write: it
// must show exactly the hub's records that match, each identical to the
// hub's (1,500 seeds passed with -sync.runs=1500).
func TestRandomClusterFiltered(t *testing.T) {
	for run := 0; run < *flagClusterRuns; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { randomCluster(t, 8, *flagClusterSteps, true) })
	}
}

func randomCluster(t *testing.T, nnodes, steps int, withFilter bool) {
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
	// And one holds only the records of t whose f1 is "x": records enter
	// and leave its scope as f1 changes.
	var filtered *simNode
	if withFilter {
		filtered = devices[2]
		filtered.local.Scope = Scope{Tables: []TableScope{{Table: "t", Where: []FieldMatch{{Field: "f1", Value: crdt.MustValue("x")}}}}}
	}
	tables := []string{"t", "u"}
	offline := map[*simNode]bool{}
	all := append([]*simNode{hub}, devices...)
	var full []*simNode
	for _, n := range all {
		if n != partial && n != filtered {
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
				var v any = fmt.Sprintf("%s.%d", n.name, step)
				if f == "f1" {
					v = []string{"x", "y"}[s.rng.IntN(2)]
				}
				if filtered != nil && n == filtered {
					table = "t"
				}
				s.write(n, table, id, map[string]any{f: v}, false)
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
		if converged(t, full) && converged(t, []*simNode{hub, partial}, "t") && (filtered == nil || filteredMismatch(t, hub, filtered) == "") {
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
	if filtered != nil {
		if msg := filteredMismatch(t, hub, filtered); msg != "" {
			s.fail("%s", msg)
		}
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

const hlcBound = hlc.DefaultMaxOffset

// TestThirtyNodes: 30 replicas each make writes, then meet in random pairs
// (as gossip would pair them); the cluster converges within a bounded
// number of rounds (epidemic spreading needs O(log n)).
func TestThirtyNodes(t *testing.T) {
	s := newSim(t)
	var nodes []*simNode
	for i := 0; i < 30; i++ {
		role := "device"
		if i < 3 {
			role = "hub"
		}
		nodes = append(nodes, s.add(fmt.Sprintf("n%d", i), role, FullScope()))
	}
	for i, n := range nodes {
		for j := 0; j < 10; j++ {
			n.phys += int64(s.rng.IntN(5))
			s.write(n, "t", fmt.Sprint(s.rng.IntN(40)), map[string]any{fmt.Sprintf("f%d", j%3): i*100 + j}, false)
		}
	}
	rounds := 0
	for !converged(t, nodes) {
		rounds++
		if rounds > 20 {
			s.fail("30 nodes not converged after 20 rounds of random pairings")
		}
		perm := s.rng.Perm(len(nodes))
		for i := 0; i+1 < len(perm); i += 2 {
			s.mustSync(nodes[perm[i]], nodes[perm[i+1]])
		}
		// And each node with one more random partner.
		for _, n := range nodes {
			m := nodes[s.rng.IntN(len(nodes))]
			if m != n {
				s.mustSync(n, m)
			}
		}
	}
	t.Logf("30 nodes converged in %d rounds", rounds)
	checkNoLoss(s, nodes[0], nodes)
}

// TestParkedBeyondClockBound: a write stamped far ahead of the receiver's
// clock (a device whose clock runs an hour fast) is parked, not applied
// and not dropped; the receiver's clock is not dragged forward; once time
// catches up, a later session applies it.
func TestParkedBeyondClockBound(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	fast := s.add("fast", "device", FullScope())
	fast.phys += 3600_000 // an hour ahead
	w := s.write(fast, "t", "x", map[string]any{"v": "from the future"}, false)
	before := hub.clock.HighWater()
	_, sh, err := s.session(fast, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Parked != 1 || sh.WritesApplied != 0 {
		t.Fatalf("hub stats %+v, want one parked write", sh)
	}
	if hw := hub.clock.HighWater(); hw.Wall() > hub.phys+int64(hlcBound/time.Millisecond) || hw.Wall() >= w.TS.Wall() {
		t.Fatalf("hub clock dragged to %v by a parked write (was %v)", hw, before)
	}
	parked, err := hub.st.ListParked()
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked list: %v %v", parked, err)
	}
	if _, err := hub.st.Get("t", "x"); err == nil {
		t.Fatal("a parked write was applied")
	}
	// Time passes on the hub; the next session applies it.
	hub.phys += 3600_000
	if _, sh, err = s.session(fast, hub, 0); err != nil {
		t.Fatal(err)
	}
	if sh.WritesApplied != 1 {
		t.Fatalf("after catching up: %+v", sh)
	}
	if parked, _ := hub.st.ListParked(); len(parked) != 0 {
		t.Fatalf("applied write still listed as parked: %v", parked)
	}
	if got := fmt.Sprint(hubValue(t, hub, "t", "x", "v")); got != `"from the future"` {
		t.Fatalf("hub has %s", got)
	}
}

func hubValue(t *testing.T, n *simNode, table, id, field string) crdt.Value {
	rec, err := n.st.Get(table, id)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := rec.Get(field)
	return v
}

// filteredMismatch checks that the filtered replica shows exactly the
// hub's records that match its filter, each identical to the hub's.
func filteredMismatch(t *testing.T, hub, filtered *simNode) string {
	hubRecs, _, err := hub.st.Scan("t", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hubRecs {
		got, err := filtered.st.Get("t", e.ID)
		want := filtered.local.Scope.Selects("t", e.ID, e.Record, nil) && e.Record.Exists()
		switch {
		case want && err != nil:
			skipped, _ := filtered.st.HiddenSkipped("t", e.ID)
			any, _ := filtered.st.GetAny("t", e.ID)
			return fmt.Sprintf("filtered replica lacks t/%s, which matches its filter: %v\nskipped %v\nhub applied %v\nfiltered state %+v", e.ID, err, skipped, e.Record.Applied, any)
		case want && got.Digest() != e.Record.Digest():
			return fmt.Sprintf("filtered replica's t/%s differs from the hub's:\n%v\n%v\nfiltered: %+v\nhub: %+v", e.ID, got.Values(), e.Record.Values(), got, e.Record)
		case !want && err == nil && got.Exists():
			return fmt.Sprintf("filtered replica shows t/%s, which does not match its filter (%v)\nfiltered: %+v\nhub: %+v", e.ID, got.Values(), got, e.Record)
		}
	}
	return ""
}
