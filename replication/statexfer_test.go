package replication

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
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

var (
	flagStateRuns  = flag.Int("sync.stateruns", 6, "number of TestStateTransferRandom runs")
	flagStateTrace = flag.Bool("sync.statetrace", false, "TestStateTransferRandom: trace the collector")
	flagNoState    = flag.Bool("sync.nostate", false, "TestStateTransferRandom without state transfer (to compare)")
)

// TestStateTransferRandom mixes state transfer with everything else on
// random histories: two hubs (one collecting tombstones), full devices, a
// device holding one table, a filtered device, devices that meet only
// devices, new devices joining mid-run, writes, deletes, re-creations,
// cut sessions. Every node weighs state transfer from a handful of
// missing writes, so most catch-ups of any size go by states. At the end
// every replica shows the same records (the partial ones their share),
// full replicas hold the same numbers of every origin, nothing
// acknowledged is lost, and every store verifies.
func TestStateTransferRandom(t *testing.T) {
	for run := 0; run < *flagStateRuns; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) { stateRandom(t, 500) })
	}
}

func stateRandom(t *testing.T, steps int) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	// Replicas quiet for 5 s of the hub's time are forgotten: tombstones
	// get collected, and a device left behind is refused and reset.
	coll := NewCollector(hub.st, 5*time.Second, func() time.Time { return time.UnixMilli(hub.phys) })
	hub.local.OnPeerHave = coll.Observe
	hub2 := s.add("hub2", "hub", FullScope())
	var devices []*simNode
	newDevice := func(name string, scope Scope) *simNode {
		d := s.add(name, "device", scope)
		d.phys = hub.phys + int64(s.rng.IntN(2000)) - 1000
		d.local.ChunkBytes = 1 << (9 + s.rng.IntN(6))
		devices = append(devices, d)
		return d
	}
	for i := 0; i < 4; i++ {
		newDevice(fmt.Sprintf("d%d", i), FullScope())
	}
	partial := newDevice("part", TablesScope("t"))
	filtered := newDevice("filt", Scope{Tables: []TableScope{{Table: "t", Where: []FieldMatch{{Field: "f1", Value: crdt.MustValue("x")}}}}})
	peerOnly := map[*simNode]bool{devices[3]: true} // meets devices only
	hubs := []*simNode{hub, hub2}
	var gone []*simNode // reset replicas: their acknowledged writes must survive
	all := func() []*simNode { return append(append([]*simNode{}, hubs...), devices...) }
	for _, n := range devices {
		n.local.StateMinWrites = s.rng.IntN(30) - 10 // some unweighed
	}
	hub.local.StateMinWrites, hub2.local.StateMinWrites = -1, -1
	// reset replaces a device refused as older than the horizon by a new
	// replica (a new node id) of the same scope, as replicad reset does:
	// its writes that no other replica holds are gone with it.
	resets := 0
	reset := func(d *simNode) {
		resets++
		var kept []*crdt.Write
		for _, w := range d.acked {
			for _, n := range all() {
				if n != d && n.st.HeldOf(w.Origin).Contains(w.Seq) {
					kept = append(kept, w)
					break
				}
			}
		}
		nu := s.add(fmt.Sprintf("%s'", d.name), "device", d.local.Scope)
		nu.phys, nu.local.ChunkBytes, nu.local.StateMinWrites = d.phys, d.local.ChunkBytes, d.local.StateMinWrites
		retired := *d
		retired.acked = kept
		gone = append(gone, &retired)
		*d = *nu
		s.log = append(s.log, "reset "+retired.name+" as "+d.name)
	}
	defer func() {
		if resets > 0 {
			t.Logf("%d devices reset", resets)
		}
	}()
	var stateRecs uint64
	session := func(a, b *simNode, cut int) error {
		a.local.NoStateTransfer, b.local.NoStateTransfer = *flagNoState, *flagNoState
		sa, sb, err := s.session(a, b, cut)
		stateRecs += sa.StateRecords + sb.StateRecords
		s.log = append(s.log, fmt.Sprintf("session %s-%s cut=%d: states %d/%d covered %d/%d: %v", a.name, b.name, cut, sa.StateRecords, sb.StateRecords, sa.StateClaimed, sb.StateClaimed, err))
		if a == hub || b == hub {
			h, err := coll.Step()
			if err != nil {
				s.fail("collector: %v", err)
			}
			if *flagStateTrace {
				t.Logf("TRACE %s-%s: horizon %v (%s); part holds %v", a.name, b.name, h, coll.Status(), partial.st.Holdings())
			}
		}
		return err
	}
	ids := []string{"a", "b", "c", "d", "e", "f"}
	fields := []string{"f1", "f2", "f3"}
	joined := 0
	for step := 0; step < steps; step++ {
		for _, n := range all() {
			n.phys += int64(s.rng.IntN(20))
		}
		hub.phys += 50 // the collector's epochs move on hub time
		if step%100 == 99 {
			// A calm spell: every device that meets hubs syncs with the
			// hub twice, so that epochs complete and tombstones go.
			for i := 0; i < 2; i++ {
				if err := session(hub2, hub, 0); err != nil {
					s.fail("calm hub2: %v", err)
				}
				for _, d := range devices {
					if !peerOnly[d] {
						if err := session(d, hub, 0); err != nil && !errors.Is(err, ErrResyncRequired) && !strings.Contains(err.Error(), ErrResyncRequired.Error()) {
							s.fail("calm %s: %v", d.name, err)
						} else if err != nil {
							reset(d)
						}
					}
				}
			}
			continue
		}
		switch r := s.rng.IntN(20); {
		case r < 10: // a write, a delete, or a re-creation
			ns := all()
			n := ns[s.rng.IntN(len(ns))]
			if peerOnly[n] && s.rng.IntN(40) != 0 {
				continue // seldom: an origin no hub meets holds collection back
			}
			table := []string{"t", "u"}[s.rng.IntN(2)]
			if n == partial || n == filtered {
				table = "t"
			}
			id := ids[s.rng.IntN(len(ids))]
			if s.rng.IntN(6) == 0 {
				s.write(n, table, id, nil, true)
				s.log = append(s.log, fmt.Sprintf("%s deletes %s/%s", n.name, table, id))
				continue
			}
			f := fields[s.rng.IntN(len(fields))]
			var v any = fmt.Sprintf("%s.%d", n.name, step)
			if f == "f1" {
				v = []string{"x", "y"}[s.rng.IntN(2)]
			}
			s.write(n, table, id, map[string]any{f: v}, false)
			s.log = append(s.log, fmt.Sprintf("%s writes %s/%s.%s", n.name, table, id, f))
		case r < 11 && joined < 2 && step > steps/4: // a new device joins
			joined++
			d := newDevice(fmt.Sprintf("new%d", joined), FullScope())
			s.log = append(s.log, "joins "+d.name)
		default: // a session, maybe cut
			ns := all()
			a, b := ns[s.rng.IntN(len(ns))], ns[s.rng.IntN(len(ns))]
			if a == b || (a.local.Role == "hub" || b.local.Role == "hub") && (peerOnly[a] || peerOnly[b]) {
				continue
			}
			if b.local.Role != "hub" && a.local.Role == "hub" {
				a, b = b, a // devices dial hubs
			}
			cut := 0
			if s.rng.IntN(4) == 0 {
				cut = 1 + s.rng.IntN(10)
			}
			err := session(a, b, cut)
			if err != nil && errors.Is(err, ErrResyncRequired) || strings.Contains(fmt.Sprint(err), ErrResyncRequired.Error()) {
				for _, n := range []*simNode{a, b} {
					for _, o := range []*simNode{a, b} {
						if h, _ := o.st.GCHorizon(); n.local.Role == "device" && below(n.st.Holdings(), h, n.local.Node) {
							reset(n)
							break
						}
					}
				}
				continue
			}
			if err != nil && err != errCut {
				for _, n := range []*simNode{a, b} {
					sh, _ := n.st.StateHeld()
					h, _ := n.st.GCHorizon()
					t.Logf("DEBUG %s (%v) holds %v state %v horizon %v", n.name, n.local.Node, n.st.Holdings(), sh, h)
				}
				s.fail("session %s-%s: %v", a.name, b.name, err)
			}
		}
	}
	// Full replicas hold identical records, but a device that meets no hub
	// adopts no horizon and keeps its tombstones: the records it shows are
	// the same.
	var full []*simNode
	for _, n := range all() {
		if n != partial && n != filtered && !peerOnly[n] {
			full = append(full, n)
		}
	}
	sameView := func() bool {
		for n := range peerOnly {
			if liveDigest(t, n) != liveDigest(t, hub) {
				return false
			}
		}
		return true
	}
	rounds := 0
	for ; rounds < 6; rounds++ {
		if err := session(hub2, hub, 0); err != nil {
			s.fail("heal: %v", err)
		}
		for _, d := range devices {
			p := hub
			if peerOnly[d] {
				p = devices[0]
			}
			if err := session(d, p, 0); err != nil && strings.Contains(err.Error(), ErrResyncRequired.Error()) {
				reset(d)
			} else if err != nil {
				s.fail("heal %s: %v", d.name, err)
			}
		}
		if converged(t, full) && sameView() && converged(t, []*simNode{hub, partial}, "t") && filteredMismatch(t, hub, filtered) == "" {
			break
		}
	}
	if !converged(t, full) {
		for _, n := range full[1:] {
			if d := recordDiff(t, hub, n); d != "" {
				t.Log(d)
			}
		}
		for _, n := range all() {
			sh, _ := n.st.StateHeld()
			h, _ := n.st.GCHorizon()
			t.Logf("DEBUG %s (%v) holds %v state %v horizon %v", n.name, n.local.Node, n.st.Holdings(), sh, h)
		}
		s.fail("full replicas not converged after %d healing rounds", rounds)
	}
	if !sameView() {
		s.fail("a device that meets only devices shows other records than the hub")
	}
	if !converged(t, []*simNode{hub, partial}, "t") {
		s.fail("the partial replica's table differs from the hub's")
	}
	if msg := filteredMismatch(t, hub, filtered); msg != "" {
		s.fail("%s", msg)
	}
	for _, n := range append(full[1:], devices[3]) {
		if d := holdingsEqual(full[0], n); d != "" {
			s.fail("holdings differ: %s", d)
		}
	}
	checkNoLossCollected(s, hub, append(all(), gone...))
	for _, n := range all() {
		if err := n.st.Verify(); err != nil {
			s.fail("%s: verify: %v", n.name, err)
		}
	}
	if stateRecs == 0 {
		s.fail("no record went as a state: the run did not test state transfer")
	}
	h, _ := hub.st.GCHorizon()
	t.Logf("converged after %d healing rounds; %d records merged as states; horizon %v (%s)", rounds+1, stateRecs, h, coll.Status())
}

// recordDiff names the first record a and b hold differently.
func recordDiff(t testing.TB, a, b *simNode) string {
	for _, table := range []string{"t", "u"} {
		ra, _, _ := a.st.Scan(table, "", 1000)
		rb, _, _ := b.st.Scan(table, "", 1000)
		m := map[string]*crdt.Record{}
		for _, e := range rb {
			m[e.ID] = e.Record
		}
		for _, e := range ra {
			o := m[e.ID]
			delete(m, e.ID)
			if o == nil {
				return fmt.Sprintf("%s/%s: %s has %+v, %s has none", table, e.ID, a.name, e.Record, b.name)
			}
			if o.Digest() != e.Record.Digest() {
				return fmt.Sprintf("%s/%s:\n %s: %+v\n %s: %+v", table, e.ID, a.name, e.Record, b.name, o)
			}
		}
		for id, o := range m {
			return fmt.Sprintf("%s/%s: %s has none, %s has %+v", table, id, a.name, b.name, o)
		}
	}
	return ""
}

// liveDigest is a digest of the records n shows (deleted ones left out).
func liveDigest(t testing.TB, n *simNode) [32]byte {
	h := sha256.New()
	for _, tb := range []string{"t", "u"} {
		recs, _, err := n.st.Scan(tb, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Record.Exists() {
				h.Write([]byte(tb + "\x00" + r.ID + "\x00"))
				r.Record.WriteDigest(h)
			}
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// checkNoLossCollected is checkNoLoss where records may have been deleted
// and collected: a write to a record the hub no longer holds, under the
// hub's horizon, must be superseded by a write (a delete) that saw it.
func checkNoLossCollected(s *sim, ref *simNode, nodes []*simNode) {
	h, err := ref.st.GCHorizon()
	if err != nil {
		s.t.Fatal(err)
	}
	var all, live []*crdt.Write
	for _, n := range nodes {
		all = append(all, n.acked...)
	}
	for _, w := range all {
		if _, err := ref.st.GetAny(w.Table, w.ID); err == nil || !h.Covers(w.Dot()) {
			live = append(live, w)
			continue
		}
		for _, f := range w.Fields {
			if !supersededBySeen(all, w, f.Name) {
				s.fail("write %v to the collected record %s/%s: field %s not superseded by a write that saw it", w.Dot(), w.Table, w.ID, f.Name)
			}
		}
	}
	for _, w := range live {
		rec, err := ref.st.Get(w.Table, w.ID)
		if err != nil {
			s.fail("record %s/%s of an acknowledged write is missing: %v", w.Table, w.ID, err)
		}
		for _, f := range w.Fields {
			seen := false
			for _, c := range rec.Candidates(f.Name) {
				seen = seen || c.Dot() == w.Dot()
			}
			if !seen && !supersededBySeen(all, w, f.Name) {
				s.fail("write %v field %s: neither live nor superseded by a write that saw it", w.Dot(), f.Name)
			}
		}
	}
}
