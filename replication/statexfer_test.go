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
	"github.com/ugorji/go/codec"
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
	// Full replicas show the same records (viewDigest).
	var full []*simNode
	for _, n := range all() {
		if n != partial && n != filtered {
			full = append(full, n)
		}
	}
	sameView := func() bool {
		for _, n := range full {
			if viewDigest(t, n) != viewDigest(t, hub) {
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
		if sameView() && viewDigest(t, partial, "t") == viewDigest(t, hub, "t") && filteredMismatchOf(t, hub, filtered, "t") == "" {
			break
		}
	}
	if !sameView() {
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
	if viewDigest(t, partial, "t") != viewDigest(t, hub, "t") {
		s.fail("the partial replica's table differs from the hub's")
	}
	if msg := filteredMismatchOf(t, hub, filtered, "t"); msg != "" {
		s.fail("%s", msg)
	}
	for _, n := range full[1:] {
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

// viewDigest is a digest of what n shows and can still decide of each
// existing record: existence candidates and every field's live
// candidates (stamps and values), as the fault harness's checker compares
// replicas. A record collected before a write re-created it keeps other
// covers and deletes than where the write came first (ARCHITECTURE.md),
// and a device that meets only devices keeps its tombstones.
func viewDigest(t testing.TB, n *simNode, tables ...string) [32]byte {
	h := sha256.New()
	if len(tables) == 0 {
		tables = []string{"t", "u"}
	}
	for _, tb := range tables {
		recs, _, err := n.st.Scan(tb, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if !r.Record.Exists() {
				continue
			}
			fmt.Fprintf(h, "%s\x00%s\x00%s", tb, r.ID, recordView(r.Record))
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

// TestStateTransferCut cuts a fresh device's state transfer after each
// message in turn, with the hub writing on between attempts: every cut
// session leaves the device holding only what it received whole, the
// next one restarts or resumes, and at the end the device holds exactly
// the hub's records and numbers.
func TestStateTransferCut(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	fillHistory(s, a, "t", 60, 8, 2000)
	s.mustSync(a, hub)
	b := s.add("b", "device", FullScope())
	hub.local.ChunkBytes = 2048 // many chunks of records
	cuts := 0
	for cut := 1; ; cut++ {
		if cut > 2000 {
			t.Fatal("never finished")
		}
		sb, _, err := s.session(b, hub, cut)
		if err == nil {
			t.Logf("finished after %d cut sessions; the last merged %d states", cuts, sb.StateRecords)
			break
		}
		if err != errCut {
			t.Fatalf("cut %d: %v", cut, err)
		}
		cuts++
		if err := b.st.Verify(); err != nil {
			t.Fatalf("after cut %d: %v", cut, err)
		}
		// Whatever b holds, it holds in its records: every number it
		// holds of a is in the state of the record a wrote it to.
		for _, w := range a.acked {
			if !b.st.HeldOf(w.Origin).Contains(w.Seq) {
				continue
			}
			rec, err := b.st.GetAny(w.Table, w.ID)
			if err != nil || !rec.Applied.Covers(w.Dot()) {
				t.Fatalf("after cut %d: b holds %v but its record %s/%s does not include it", cut, w.Dot(), w.Table, w.ID)
			}
		}
		if cut%7 == 0 { // the hub moves on meanwhile
			a.phys += 5
			s.write(a, "t", fmt.Sprintf("r%04d", cut%60), map[string]any{"f00": cut}, false)
			s.mustSync(a, hub)
		}
	}
	if cuts < 3 {
		t.Fatalf("only %d cuts: the transfer did not take several messages", cuts)
	}
	if digest(t, b) != digest(t, hub) {
		t.Fatal("device differs from the hub")
	}
	if d := holdingsEqual(b, hub); d != "" {
		t.Fatal(d)
	}
	if err := b.st.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestStateTransferFiltered: a fresh device with a filtered profile gets
// as states only the records its filter selects, holds every number of
// the history (the others' writes lie outside its scope), and a record
// entering its scope later arrives whole.
func TestStateTransferFiltered(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	for i := 0; i < 40; i++ {
		a.phys++
		owner := "ann"
		if i%4 != 0 {
			owner = "bob"
		}
		s.write(a, "jobs", fmt.Sprintf("j%02d", i), map[string]any{"owner": owner, "n": 0}, false)
		s.write(a, "other", fmt.Sprintf("o%02d", i), map[string]any{"n": 0}, false)
	}
	for k := 0; k < 1200; k++ {
		a.phys++
		s.write(a, "jobs", fmt.Sprintf("j%02d", s.rng.IntN(40)), map[string]any{"n": k}, false)
	}
	s.mustSync(a, hub)
	dev := s.add("ann", "device", Scope{Tables: []TableScope{{Table: "jobs", Where: []FieldMatch{{Field: "owner", Value: crdt.MustValue("ann")}}}}})
	sd, _, err := s.session(dev, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sd.StateRecords != 10 || sd.WritesApplied != 0 {
		t.Fatalf("want the 10 records of ann as states and no write; got %+v", sd)
	}
	if msg := filteredMismatchOf(t, hub, dev, "jobs"); msg != "" {
		t.Fatal(msg)
	}
	if ts, _ := dev.st.Tables(); len(ts) != 1 || ts[0] != "jobs" {
		t.Fatalf("the device holds tables %v", ts)
	}
	if d := holdingsEqual(dev, hub); d != "" {
		t.Fatal(d)
	}
	// j01 is given to ann: it enters her scope whole.
	a.phys += 10
	s.write(a, "jobs", "j01", map[string]any{"owner": "ann"}, false)
	s.mustSync(a, hub)
	s.mustSync(dev, hub)
	if msg := filteredMismatchOf(t, hub, dev, "jobs"); msg != "" {
		t.Fatal(msg)
	}
	if _, err := dev.st.Get("jobs", "j01"); err != nil {
		t.Fatalf("j01 did not enter the scope: %v", err)
	}
	if err := dev.st.Verify(); err != nil {
		t.Fatal(err)
	}
}

// filteredMismatchOf is filteredMismatch for any table, comparing what
// the records show (recordView).
func filteredMismatchOf(t *testing.T, hub, dev *simNode, table string) string {
	recs, _, err := hub.st.Scan(table, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range recs {
		got, err := dev.st.Get(table, e.ID)
		want := dev.local.Scope.Selects(table, e.ID, e.Record, nil) && e.Record.Exists()
		switch {
		case want && err != nil:
			return fmt.Sprintf("device lacks %s/%s: %v", table, e.ID, err)
		case want && recordView(got) != recordView(e.Record):
			return fmt.Sprintf("device's %s/%s differs from the hub's", table, e.ID)
		case !want && err == nil && got.Exists():
			return fmt.Sprintf("device shows %s/%s, outside its scope", table, e.ID)
		}
	}
	return ""
}

// TestStateTransferOldPeer: a peer that does not speak state transfer
// (NoStateTransfer, as one that predates it: it neither sets Have.State
// nor sends states) syncs by the log, on either side.
func TestStateTransferOldPeer(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	fillHistory(s, a, "t", 20, 5, 1500)
	s.mustSync(a, hub)
	for _, old := range []string{"receiver", "sender"} {
		b := s.add("b-"+old, "device", FullScope())
		if old == "receiver" {
			b.local.NoStateTransfer = true
		} else {
			hub.local.NoStateTransfer = true
		}
		sb, sh, err := s.session(b, hub, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sb.StateRecords != 0 || sh.WritesSent != 1500 {
			t.Fatalf("old %s: want the 1500 writes by the log, got %+v / %+v", old, sb, sh)
		}
		if digest(t, b) != digest(t, hub) {
			t.Fatalf("old %s: replicas differ", old)
		}
		hub.local.NoStateTransfer = false
	}
}

// haveV4 and chunkV4 are Have and Chunk before state transfer.
type haveV4 struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Origins []OriginHeld
	GC      []uint64
	Accept  *AcceptOrigins
	Void    []OriginHeld
}

type chunkV4 struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	No      uint64
	Body    []byte
	Empties []OriginHeld
	Skips   []Skip
}

// TestStateTrailingFieldsCompatible: Have.State and Chunk.Recs/Covered
// are trailing fields: a peer that predates them decodes the new
// messages, and a new peer decodes the old ones (State 0: no states).
func TestStateTrailingFieldsCompatible(t *testing.T) {
	have := Msg{Have: &Have{Origins: []OriginHeld{{Origin: 3, Contig: 9}}, GC: []uint64{3, 2}, State: StateTake}}
	data, err := EncodeMsg(have)
	if err != nil {
		t.Fatal(err)
	}
	var oldHave haveV4
	if err := codec.NewDecoderBytes(data[1:], wireHandle).Decode(&oldHave); err != nil || len(oldHave.Origins) != 1 || oldHave.Origins[0].Contig != 9 {
		t.Fatalf("an old peer cannot decode a new Have: %+v %v", oldHave, err)
	}
	var buf []byte
	if err := codec.NewEncoderBytes(&buf, wireHandle).Encode(&oldHave); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMsg(append([]byte{byte(MsgHave)}, buf...))
	if err != nil || back.Have.State != 0 || back.Have.Origins[0].Contig != 9 {
		t.Fatalf("a new peer reads an old Have as %+v (%v)", back.Have, err)
	}
	chunk := Msg{Chunk: &Chunk{No: 4, Empties: []OriginHeld{{Origin: 5, Contig: 1}},
		Recs: []RecordState{{Table: "t", ID: "x", State: []byte{0x90}}}, Covered: []OriginHeld{{Origin: 5, Contig: 7}}}}
	if data, err = EncodeMsg(chunk); err != nil {
		t.Fatal(err)
	}
	var oldChunk chunkV4
	if err := codec.NewDecoderBytes(data[1:], wireHandle).Decode(&oldChunk); err != nil || oldChunk.No != 4 || len(oldChunk.Empties) != 1 {
		t.Fatalf("an old peer cannot decode a new Chunk: %+v %v", oldChunk, err)
	}
	buf = nil
	if err := codec.NewEncoderBytes(&buf, wireHandle).Encode(&oldChunk); err != nil {
		t.Fatal(err)
	}
	if back, err = DecodeMsg(append([]byte{byte(MsgChunk)}, buf...)); err != nil || back.Chunk.No != 4 || back.Chunk.Recs != nil || back.Chunk.Covered != nil {
		t.Fatalf("a new peer reads an old Chunk as %+v (%v)", back.Chunk, err)
	}
	if got, err := DecodeMsg(data); err != nil || len(got.Chunk.Recs) != 1 || got.Chunk.Covered[0].Contig != 7 {
		t.Fatalf("round trip: %+v %v", got.Chunk, err)
	}
}

// TestStateNotTakenRefused: states from a peer this side did not ask
// them of (its Have said State 0) end the session as a protocol error.
func TestStateNotTakenRefused(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	b := s.add("b", "device", FullScope())
	sess := NewSession(b.local, true)
	b.local.NoStateTransfer = true
	sess.Start()
	if _, err := sess.Handle(Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "sim", Node: uint64(hub.local.Node), Role: "hub"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Handle(Msg{Have: &Have{}}); err != nil {
		t.Fatal(err)
	}
	rec, _ := (&crdt.Record{}).MarshalBinary()
	_, err := sess.Handle(Msg{Chunk: &Chunk{No: 1, Recs: []RecordState{{Table: "t", ID: "x", State: rec}}, Covered: []OriginHeld{{Origin: uint64(hub.local.Node), Contig: 50}}}})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want a protocol error", err)
	}
	if h := b.st.HeldOf(hub.local.Node); h.Max() != 0 {
		t.Fatalf("b holds %v of the hub", h)
	}
}

// TestStateTransferThreshold: the sender weighs the log against the
// states. A fresh device gets the log when the history is the records'
// creation alone (the states would cost as much), states when single-
// field updates followed (the log costs more), and a device missing fewer
// than StateMinWrites writes gets the log without any weighing.
func TestStateTransferThreshold(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	fillHistory(s, a, "t", 600, 10, 600) // creations only
	s.mustSync(a, hub)
	fresh := func(name string) Stats {
		d := s.add(name, "device", FullScope())
		st, _, err := s.session(d, hub, 0)
		if err != nil {
			t.Fatal(err)
		}
		if digest(t, d) != digest(t, hub) {
			t.Fatalf("%s differs from the hub", name)
		}
		return st
	}
	if st := fresh("b"); st.StateRecords != 0 || st.WritesApplied != 600 {
		t.Fatalf("creations only: want the log, got %+v", st)
	}
	for k := 0; k < 15000; k++ {
		a.phys++
		s.write(a, "t", fmt.Sprintf("r%04d", s.rng.IntN(600)), map[string]any{fmt.Sprintf("f%02d", s.rng.IntN(10)): k}, false)
	}
	s.mustSync(a, hub)
	if st := fresh("c"); st.StateRecords != 600 || st.WritesApplied != 0 {
		t.Fatalf("after updates: want states, got %+v", st)
	}
	// b missed the updates: as many as a fresh device, but it holds the
	// creations, so every record goes whole or by the log, weighed.
	b := s.byName["b"]
	a.phys++
	for k := 0; k < StateMinWrites-1; k++ {
		a.phys++
		s.write(a, "t", "r0001", map[string]any{"f00": k}, false)
	}
	s.mustSync(a, hub)
	d := s.add("d", "device", FullScope())
	s.mustSync(d, hub)
	a.phys++
	for k := 0; k < StateMinWrites-1; k++ {
		s.write(a, "t", "r0002", map[string]any{"f01": k}, false)
	}
	s.mustSync(a, hub)
	if st, _, err := s.session(d, hub, 0); err != nil || st.StateRecords != 0 || st.WritesApplied != StateMinWrites-1 {
		t.Fatalf("fewer than StateMinWrites missing: want the log, got %+v (%v)", st, err)
	}
	s.mustSync(b, hub)
	if digest(t, b) != digest(t, hub) || digest(t, d) != digest(t, hub) {
		t.Fatal("replicas differ")
	}
}

// recordView is what a record shows and can still decide (viewDigest).
func recordView(rec *crdt.Record) string {
	var b strings.Builder
	for _, e := range rec.Exist {
		fmt.Fprintf(&b, "e%v/%v;", e.Dot(), e.TS)
	}
	for _, f := range rec.FieldNames() {
		for _, c := range rec.Candidates(f) {
			fmt.Fprintf(&b, "%s:%v/%v=%x;", f, c.Dot(), c.TS, []byte(c.Value))
		}
	}
	return b.String()
}

// TestStateTransferRelays: numbers a replica holds only through states
// reach the others. A new hub takes the history from a hub as states; a
// device behind it is then sent states too (the new hub has no log of
// those writes to stream). A device that meets only devices gets, from a
// device that holds them only through states, states of its own (a
// relay), and its own writes still reach the hub by the log through that
// device.
func TestStateTransferRelays(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	fillHistory(s, a, "t", 40, 6, 1500)
	s.mustSync(a, hub)
	hub2 := s.add("hub2", "hub", FullScope())
	st2, _, err := s.session(hub2, hub, 0)
	if err != nil || st2.StateRecords != 40 {
		t.Fatalf("new hub: %+v %v", st2, err)
	}
	// b holds the first 100 writes, by the log, then meets only hub2.
	b := s.add("b", "device", FullScope())
	if _, err := b.st.ApplyRemote(b.clock, a.acked[:100], nil); err != nil {
		t.Fatal(err)
	}
	sb, _, err := s.session(b, hub2, 0)
	if err != nil || sb.StateRecords == 0 || sb.StateClaimed != 1400 {
		t.Fatalf("a device behind the new hub: %+v %v", sb, err)
	}
	if digest(t, b) != digest(t, hub) || holdingsEqual(b, hub) != "" {
		t.Fatal("b differs from the hub")
	}
	// d meets only b, writes, and its writes reach the hub through b.
	d := s.add("d", "device", FullScope())
	sd, _, err := s.session(d, b, 0)
	if err != nil || sd.StateRecords != 40 {
		t.Fatalf("a device meeting only a device: %+v %v", sd, err)
	}
	d.phys += 100
	w := s.write(d, "t", "r0003", map[string]any{"f00": "from d"}, false)
	s.mustSync(d, b)
	s.mustSync(b, hub)
	if !hub.st.HeldOf(w.Origin).Contains(w.Seq) {
		t.Fatal("d's write did not reach the hub through b")
	}
	for _, n := range []*simNode{hub2, b, d} {
		s.mustSync(n, hub)
	}
	for _, n := range []*simNode{hub2, b, d, a} {
		s.mustSync(n, hub)
		if digest(t, n) != digest(t, hub) || holdingsEqual(n, hub) != "" {
			t.Fatalf("%s differs from the hub", n.name)
		}
		if err := n.st.Verify(); err != nil {
			t.Fatal(err)
		}
	}
}

// withStates runs fn with every sim node sending record states whenever
// its peer may take them, unweighed.
func withStates(fn func()) {
	simStateMinWrites = -1
	defer func() { simStateMinWrites = 0 }()
	fn()
}

// TestPolicyRandomStates is TestPolicyRandom where every catch-up that
// may go by record states does: the policies' outcomes (lww losses
// logged, client-wins re-writes, server-wins undos, manual candidates,
// parked writes) survive, and nothing acknowledged is unexplained.
func TestPolicyRandomStates(t *testing.T) {
	simArbitrated = func(table string) bool { return randomPolicies[table].NeedsArbiter() }
	defer func() { simArbitrated = func(string) bool { return false } }()
	withStates(func() {
		for run := 0; run < *flagPolicyRuns; run++ {
			t.Run(fmt.Sprint(run), func(t *testing.T) { policyRandom(t, 5, *flagPolicySteps) })
		}
	})
}

// TestRandomClusterStates is TestRandomClusterFiltered where every
// catch-up that may go by record states does.
func TestRandomClusterStates(t *testing.T) {
	withStates(func() {
		for run := 0; run < *flagClusterRuns; run++ {
			t.Run(fmt.Sprint(run), func(t *testing.T) { randomCluster(t, 8, *flagClusterSteps, true) })
		}
	})
}

// TestStateTransferConflictsAndParked: a fresh device caught up by states
// lists the same conflicted records as the hub, with the same candidates
// (concurrent writes to one field); a write the hub parked (stamped
// beyond its clock bound) is not held there, so the states do not claim
// it; once the hub applies it, it reaches the device once the device's
// clock allows it too.
func TestStateTransferConflictsAndParked(t *testing.T) {
	withStates(func() {
		s := newSim(t)
		hub := s.add("hub", "hub", FullScope())
		a := s.add("a", "device", FullScope())
		b := s.add("b", "device", FullScope())
		s.write(a, "t", "x", map[string]any{"f": "base"}, false)
		s.mustSync(a, hub)
		s.mustSync(b, hub)
		a.phys += 5
		b.phys += 7
		s.write(a, "t", "x", map[string]any{"f": "from a"}, false)
		s.write(b, "t", "x", map[string]any{"f": "from b"}, false)
		fast := s.add("fast", "device", FullScope())
		fast.phys += 3600_000
		w := s.write(fast, "t", "y", map[string]any{"f": "from the future"}, false)
		for _, n := range []*simNode{a, b, fast} {
			s.mustSync(n, hub)
		}
		if parked, _ := hub.st.ListParked(); len(parked) != 1 {
			t.Fatalf("the hub parked %d writes", len(parked))
		}
		dev := s.add("dev", "device", FullScope())
		sd, _, err := s.session(dev, hub, 0)
		if err != nil || sd.StateRecords == 0 {
			t.Fatalf("fresh device: %+v %v", sd, err)
		}
		hc, _ := hub.st.ConflictedRecords("", "", 100)
		dc, _ := dev.st.ConflictedRecords("", "", 100)
		if len(hc) != 1 || fmt.Sprint(hc) != fmt.Sprint(dc) {
			t.Fatalf("conflicts: hub %v, device %v", hc, dc)
		}
		hr, _ := hub.st.Get("t", "x")
		dr, _ := dev.st.Get("t", "x")
		if len(dr.Candidates("f")) != 2 || recordView(hr) != recordView(dr) {
			t.Fatalf("candidates: hub %+v, device %+v", hr.Candidates("f"), dr.Candidates("f"))
		}
		if dev.st.HeldOf(w.Origin).Contains(w.Seq) {
			t.Fatal("the device holds the write the hub parked")
		}
		hub.phys += 3600_000 // time catches up at the hub: it applies it
		s.mustSync(fast, hub)
		// The device's clock is still an hour behind: the write's state is
		// not merged there, and nothing it includes is held.
		s.mustSync(dev, hub)
		if dev.st.HeldOf(w.Origin).Contains(w.Seq) {
			t.Fatal("the device holds a write beyond its clock bound")
		}
		dev.phys += 3600_000
		s.mustSync(dev, hub)
		if rec, err := dev.st.Get("t", "y"); err != nil || !dev.st.HeldOf(w.Origin).Contains(w.Seq) {
			t.Fatalf("the parked write did not reach the device: %v %v", rec, err)
		}
		if digest(t, dev) != digest(t, hub) || holdingsEqual(dev, hub) != "" {
			t.Fatal("device differs from the hub")
		}
	})
}

// TestStateTransferHideThenShowInOneBatch: a chunk naming a record twice
// merges both states in one batch. The first leaves the record outside
// the device's scope (hidden in the batch), the second brings it back in
// whole: the scope rule must read the record's hidden mark as the batch
// leaves it, not as committed (where it is not hidden yet), and show it.
func TestStateTransferHideThenShowInOneBatch(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	dev := s.add("ann", "device", Scope{Tables: []TableScope{{Table: "jobs", Where: []FieldMatch{{Field: "owner", Value: crdt.MustValue("ann")}}}}})
	sess := NewSession(dev.local, true)
	sess.Start()
	if _, err := sess.Handle(Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "sim", Node: uint64(hub.local.Node), Role: "hub", Scope: FullScope()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Handle(Msg{Have: &Have{}}); err != nil {
		t.Fatal(err)
	}
	origin := hub.local.Node
	rec := &crdt.Record{}
	w1 := &crdt.Write{Table: "jobs", ID: "j1", Origin: origin, Seq: 1, TS: hlc.New(dev.phys-10, 0),
		Fields: []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue("bob")}}}
	rec.Apply(w1, nil)
	bob, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w2 := &crdt.Write{Table: "jobs", ID: "j1", Origin: origin, Seq: 2, TS: hlc.New(dev.phys-5, 0), Ctx: rec.Context(),
		Fields: []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue("ann")}}}
	rec.Apply(w2, nil)
	ann, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Handle(Msg{Chunk: &Chunk{No: 1, Recs: []RecordState{{Table: "jobs", ID: "j1", State: bob}, {Table: "jobs", ID: "j1", State: ann}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := dev.st.Get("jobs", "j1")
	if err != nil {
		t.Fatalf("j1, merged whole with owner ann, is not shown: %v", err)
	}
	if v, _ := got.Get("owner"); v.String() != crdt.MustValue("ann").String() {
		t.Fatalf("j1's owner is %v", v)
	}
	if _, hidden := dev.st.HiddenSkipped("jobs", "j1"); hidden {
		t.Fatal("j1 is still hidden")
	}
}
