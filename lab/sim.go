package lab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// epochMs is the simulated wall-clock time at the start of every run.
const epochMs = 1_700_000_000_000

const cluster = "lab"

// onSend, if set (tests), is told of every message sent and its size on
// the wire.
var onSend func(m replication.Msg, size int)

type node struct {
	idx     int
	name    string
	id      hlc.NodeID
	hub     bool
	group   string
	site    string
	skew    int64 // ms: this node's physical clock minus true time
	rep     *replica
	clock   *hlc.Clock
	local   *replication.Local
	offline int        // offline periods in force (online when 0)
	dials   []*node    // partners it syncs with (pull and push)
	sess    []*session // sessions in progress, by partner index (nil: none)
	again   []bool     // a sync with that partner was asked for during a session
}

func (n *node) online() bool { return n.offline == 0 }

type session struct {
	a, b     *node // a dialed
	sa, sb   *replication.Session
	dead     bool
	inflight int
	sendFree [2]int64 // per direction (0: a to b): when the link is free to send
	arrive   [2]int64 // per direction: arrival of the last message sent
}

type writeKind uint8

const (
	personWrite writeKind = iota
	decisionWrite
	resolutionWrite
)

// winfo is what the lab knows about one write, beyond the replicas: when
// it was made, by whom, what its writer had seen, and for the hub's
// decisions which writes' values they show.
type winfo struct {
	w        *crdt.Write
	kind     writeKind
	made     int64
	seen     crdt.VV // the record as its writer held it (whatever the context sent)
	heldBy   int
	source   map[string]crdt.Dot // decision: field → the write whose value it shows
	exSource crdt.Dot            // decision: the write whose delete or re-creation it asserts
}

type pendingDecision struct {
	n uint64 // arrival number of the judgment
	w *crdt.Write
	d policy.Decision
}

type sim struct {
	sc    *Scenario
	strat Strategy
	seed  uint64

	now   int64
	q     queue
	evseq uint64
	nrng  *rand.Rand // network: jitter and loss (differs between strategies)

	nodes    []*node
	byName   map[string]*node
	arbiter  *node // first hub, or nil
	resolver *node // where a person resolves conflicts
	parts    []*partition

	writes   map[crdt.Dot]*winfo
	persons  []*winfo
	byRecord map[string][]*winfo // person writes per record key
	total    int                 // writes made anywhere

	pending   []pendingDecision
	draining  bool
	arrivals  policy.Arrivals // client-wins judgments in arrival order
	judgments uint64
	resolving map[string]bool // records with a resolution scheduled
	conflicts map[string]bool // distinct conflicts seen
	rejected  map[crdt.Dot]bool

	lastDisturb    int64
	convergedSince int64
	workloadEnd    int64

	m         Metrics
	snapshots []Snapshot
}

type partition struct {
	start, end int64
	a, b       []bool // membership by node index
	active     bool
}

func (s *sim) at(t int64, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.evseq++
	s.q.push(event{at: t, seq: s.evseq, fn: fn})
}

// runOne simulates one scenario under one strategy with one seed.
func runOne(sc *Scenario, strat Strategy, seed uint64) (*RunResult, error) {
	s := &sim{
		sc: sc, strat: strat, seed: seed,
		nrng:           rand.New(rand.NewPCG(seed, 0x6e6574)),
		byName:         map[string]*node{},
		writes:         map[crdt.Dot]*winfo{},
		byRecord:       map[string][]*winfo{},
		resolving:      map[string]bool{},
		conflicts:      map[string]bool{},
		rejected:       map[crdt.Dot]bool{},
		workloadEnd:    sc.Duration.Milliseconds(),
		convergedSince: 0,
	}
	wrng := rand.New(rand.NewPCG(seed, 0x776f726b)) // workload: the same for every strategy
	if err := s.build(wrng); err != nil {
		return nil, err
	}
	s.schedule(wrng)
	settleEnd := s.workloadEnd + max(sc.Settle.Milliseconds(), 0)
	for len(s.q) > 0 {
		e := s.q.pop()
		if e.at > settleEnd {
			s.now = settleEnd
			break
		}
		s.now = e.at
		e.fn()
		if s.now >= s.workloadEnd && s.quiet() {
			break
		}
	}
	return s.finish(), nil
}

func (s *sim) build(wrng *rand.Rand) error {
	sc := s.sc
	hlcOn := s.strat.Clock() == HLC
	add := func(name string, hub bool, group, site string, skew int64) {
		n := &node{idx: len(s.nodes), name: name, id: hlc.NodeID(len(s.nodes) + 1), hub: hub, group: group, site: site, skew: skew}
		n.rep = newReplica(n.id, hlcOn)
		n.clock = hlc.NewClock(func() int64 { return epochMs + s.now + n.skew }, sc.MaxClockOffset)
		role := "device"
		if hub {
			role = "hub"
		}
		n.local = &replication.Local{Node: n.id, Cluster: cluster, Role: role, Scope: replication.FullScope(), Clock: n.clock, Store: n.rep}
		n.rep.onHeld = func(w *crdt.Write) { s.held(n, w) }
		n.local.OnApplied = func(_ hlc.NodeID, ws []*crdt.Write, res *store.Result) { s.applied(n, ws, res) }
		s.nodes = append(s.nodes, n)
		s.byName[name] = n
	}
	for _, h := range sc.Hubs {
		add(h.Name, true, "hubs", "hubs", h.ClockSkew.Milliseconds())
	}
	for _, g := range sc.Devices {
		for _, name := range groupNames(g) {
			skew := g.ClockSkew.Milliseconds()
			if sp := g.SkewSpread.Milliseconds(); sp > 0 {
				skew += wrng.Int64N(2*sp+1) - sp
			}
			add(name, false, g.Name, g.Site, skew)
		}
	}
	var hubs, devices []*node
	for _, n := range s.nodes {
		if n.hub {
			hubs = append(hubs, n)
		} else {
			devices = append(devices, n)
		}
	}
	if len(hubs) > 0 {
		s.arbiter = hubs[0]
		s.resolver = hubs[0]
	} else {
		s.resolver = devices[0]
	}
	if sc.Topology == "hub-and-spoke" && len(hubs) == 0 {
		return fmt.Errorf("scenario %q: hub-and-spoke needs a hub", sc.Name)
	}
	for _, n := range s.nodes {
		var dials []*node
		if n.hub {
			for _, h := range hubs {
				if h != n {
					dials = append(dials, h)
				}
			}
		} else {
			dials = append(dials, hubs...)
			for _, d := range devices {
				if d != n && (sc.Topology == "mesh" || sc.Topology == "mixed" && d.site == n.site) {
					dials = append(dials, d)
				}
			}
		}
		n.dials = dials
		n.sess = make([]*session, len(s.nodes))
		n.again = make([]bool, len(s.nodes))
	}
	for _, p := range sc.Partitions {
		pt := &partition{start: p.Start.Milliseconds(), end: (p.Start + p.Duration).Milliseconds(),
			a: s.members(p.A), b: s.members(p.B)}
		s.parts = append(s.parts, pt)
	}
	return nil
}

func (s *sim) members(sel string) []bool {
	out := make([]bool, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = n.name == sel || n.group == sel || n.site == sel || sel == "hubs" && n.hub || sel == "devices" && !n.hub
	}
	return out
}

// schedule lays out the workload (writes, offline periods, partitions,
// scripted events) and the sync timers.
func (s *sim) schedule(wrng *rand.Rand) {
	sc := s.sc
	end := s.workloadEnd
	fieldPick := newZipf(len(sc.Fields), sc.FieldZipf)
	recPick := newZipf(sc.Records, sc.RecordZipf)
	for _, n := range s.nodes {
		if n.hub {
			continue
		}
		var g DeviceGroup
		for _, dg := range sc.Devices {
			if dg.Name == n.group {
				g = dg
			}
		}
		// Writes: a Poisson process, online or not.
		if g.WriteRate > 0 {
			mean := 3_600_000 / g.WriteRate
			t := 0.0
			k := 0
			for {
				t += wrng.ExpFloat64() * mean
				if int64(t) >= end {
					break
				}
				k++
				rec := fmt.Sprintf("r%03d", recPick.pick(wrng))
				del := sc.DeleteFraction > 0 && wrng.Float64() < sc.DeleteFraction
				var fs []crdt.FieldValue
				if !del {
					picked := map[int]bool{}
					for len(fs) < sc.FieldsPerWrite {
						f := fieldPick.pick(wrng)
						if picked[f] {
							continue
						}
						picked[f] = true
						v := fmt.Sprintf("%s#%d", n.name, k)
						if pad := sc.ValueBytes - len(v); pad > 0 {
							v += " " + strings.Repeat(".", pad-1)
						}
						fs = append(fs, crdt.FieldValue{Name: sc.Fields[f], Value: crdt.MustValue(v)})
					}
					sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
				}
				n := n
				s.at(int64(t), func() { s.personWrite(n, sc.Table, rec, fs, del) })
			}
		}
		// Offline periods.
		for _, o := range g.Offline {
			for start := o.Start.Milliseconds(); start < end; start += o.Every.Milliseconds() {
				b := start
				if j := o.Jitter.Milliseconds(); j > 0 {
					b += wrng.Int64N(j + 1)
				}
				e := min(b+o.Duration.Milliseconds(), end)
				if b < end && e > b {
					n := n
					s.at(b, func() { s.setOnline(n, false) })
					s.at(e, func() { s.setOnline(n, true) })
				}
				if o.Every <= 0 {
					break
				}
			}
		}
	}
	for _, p := range s.parts {
		p := p
		s.at(p.start, func() { p.active = true })
		s.at(p.end, func() { p.active = false; s.disturb(); s.reconnectAll() })
	}
	for _, ev := range sc.Events {
		ev := ev
		n := s.byName[ev.Node]
		s.at(ev.At.Milliseconds(), func() { s.scripted(n, ev) })
	}
	// Sync timers, each node at its own phase.
	for _, n := range s.nodes {
		iv := sc.Net.SyncInterval.Milliseconds()
		if n.hub {
			iv = sc.Net.HubSyncInterval.Milliseconds()
		}
		if iv <= 0 || len(n.dials) == 0 {
			continue
		}
		phase := wrng.Int64N(iv)
		n := n
		var tick func()
		tick = func() {
			for _, p := range n.dials {
				s.trySync(n, p)
			}
			s.at(s.now+iv, tick)
		}
		s.at(phase, tick)
	}
	// At the end of the workload every node is back online and every
	// partition healed.
	s.at(end, func() {
		changed := false
		for _, n := range s.nodes {
			if n.offline > 0 {
				n.offline = 0
				changed = true
			}
		}
		for _, p := range s.parts {
			if p.active {
				p.active = false
				changed = true
			}
		}
		if changed {
			s.disturb()
			s.reconnectAll()
		}
		s.checkConverged()
	})
}

func (s *sim) scripted(n *node, ev Event) {
	switch ev.Action {
	case "write":
		s.personWrite(n, ev.Table, ev.Record, ev.Fields, false)
	case "delete":
		s.personWrite(n, ev.Table, ev.Record, nil, true)
	case "sync":
		for _, p := range n.dials {
			s.trySync(n, p)
		}
	case "offline":
		s.setOnline(n, false)
	case "online":
		s.setOnline(n, true)
	case "snapshot":
		s.snapshots = append(s.snapshots, Snapshot{Label: ev.Label, Node: n.name, AtMs: s.now, Records: s.view(n)})
	}
}

func (s *sim) setOnline(n *node, on bool) {
	if on {
		if n.offline == 0 {
			return
		}
		n.offline--
		if n.offline == 0 {
			s.disturb()
			for _, p := range n.dials {
				s.trySync(n, p)
			}
			// Partners that dial it try again too.
			for _, o := range s.nodes {
				if contains(o.dials, n) {
					s.trySync(o, n)
				}
			}
		}
		return
	}
	n.offline++
}

func contains(l []*node, n *node) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

func (s *sim) reconnectAll() {
	for _, n := range s.nodes {
		for _, p := range n.dials {
			s.trySync(n, p)
		}
	}
}

func (s *sim) disturb() {
	s.lastDisturb = s.now
}

func (s *sim) partitioned(a, b *node) bool {
	for _, p := range s.parts {
		if p.active && (p.a[a.idx] && p.b[b.idx] || p.a[b.idx] && p.b[a.idx]) {
			return true
		}
	}
	return false
}

func (s *sim) canTalk(a, b *node) bool {
	return a.online() && b.online() && !s.partitioned(a, b)
}

// stamp returns the timestamp of a local write at n.
func (s *sim) stamp(n *node) hlc.Timestamp {
	if s.strat.Clock() == HLC {
		return n.clock.Now()
	}
	ts := hlc.New(n.clock.Physical(), 0)
	if ts <= n.rep.lastTS {
		ts = n.rep.lastTS + 1
	}
	n.rep.lastTS = ts
	return ts
}

// personWrite is a write made by a person at n (the workload, a script,
// or a conflict resolution).
func (s *sim) personWrite(n *node, table, id string, fields []crdt.FieldValue, del bool) *crdt.Write {
	return s.localWrite(n, table, id, fields, del, personWrite, s.strat.Context(n.id, n.rep.record(table, id)))
}

func (s *sim) localWrite(n *node, table, id string, fields []crdt.FieldValue, del bool, kind writeKind, ctx crdt.VV) *crdt.Write {
	rec := n.rep.record(table, id)
	seen := rec.Context()
	ts := s.stamp(n)
	s.total++
	w, _ := n.rep.writeLocal(table, id, fields, del, ts, ctx)
	wi := s.writes[w.Dot()]
	wi.kind, wi.seen = kind, seen
	if kind != decisionWrite {
		s.persons = append(s.persons, wi)
		k := recKey(table, id)
		s.byRecord[k] = append(s.byRecord[k], wi)
		if kind == personWrite {
			s.m.Writes++
			if del {
				s.m.Deletes++
			}
			s.disturb()
		} else {
			s.m.Resolutions++
		}
	}
	s.observe(n, recKey(table, id), rec)
	if s.sc.Net.Push {
		for _, p := range n.dials {
			s.trySync(n, p)
		}
	}
	s.checkConverged()
	return w
}

// held is called when n comes to hold w (its own writes included).
func (s *sim) held(n *node, w *crdt.Write) {
	wi := s.writes[w.Dot()]
	if wi == nil {
		wi = &winfo{w: w, made: s.now}
		s.writes[w.Dot()] = wi
	}
	wi.heldBy++
	if w.Origin != n.id {
		d := s.now - wi.made
		s.m.stalenessSum += float64(d)
		s.m.stalenessN++
		s.m.StalenessMaxMs = max(s.m.StalenessMaxMs, d)
	}
}

// applied is called after n applied a chunk of remote writes: the hub
// arbitrates, every replica shows its conflicts.
func (s *sim) applied(n *node, ws []*crdt.Write, res *store.Result) {
	if n == s.arbiter {
		for i, w := range ws {
			if res.Status[i] != store.Applied {
				continue
			}
			d := s.strat.Judge(w, &res.Outcomes[i], n.id, func(dot crdt.Dot) (policy.Decision, bool) {
				for _, p := range s.pending {
					if p.w.Dot() == dot && p.d.Rejected {
						return p.d, true
					}
				}
				return policy.Decision{}, false
			})
			if !d.Empty() || len(d.Losses) > 0 {
				s.judgments++
				if pk, ok := s.strat.(interface{ PolicyKind() policy.Kind }); ok {
					s.arrivals.Dedupe(pk.PolicyKind(), w, &d)
					s.arrivals.Judged(pk.PolicyKind(), w, s.judgments, d)
				}
				s.pending = append(s.pending, pendingDecision{n: s.judgments, w: w, d: d})
			}
		}
		if len(s.pending) > 0 && !s.draining {
			s.draining = true
			s.at(s.now, s.drain)
		}
	}
	keys := make([]string, 0, len(res.Records))
	for k := range res.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.observe(n, k, res.Records[k])
	}
}

// drain carries out the hub's decisions, as the daemon's drain loop does
// after the batch that queued them.
func (s *sim) drain() {
	s.draining = false
	hub := s.arbiter
	pend := s.pending
	s.pending = nil
	for _, p := range pend {
		rec := hub.rep.record(p.w.Table, p.w.ID)
		d := policy.Still(p.d, p.w.Dot(), rec, s.arrivals.Overtaken(p.w.Table, p.w.ID, p.n))
		s.arrivals.Done(p.n)
		s.m.SyncErrors += len(p.d.Losses)
		if p.d.Rejected && !s.rejected[p.w.Dot()] {
			s.rejected[p.w.Dot()] = true
			s.m.Rejected++
		}
		if d.Empty() {
			continue
		}
		w := s.localWrite(hub, p.w.Table, p.w.ID, d.Fields, d.Redelete, decisionWrite, rec.Context())
		wi := s.writes[w.Dot()]
		wi.source = map[string]crdt.Dot{}
		for _, l := range d.Losses {
			if l.Field == "" || d.Redelete || d.Write {
				if wi.exSource == (crdt.Dot{}) {
					wi.exSource = l.Winning.Dot()
				}
			}
			if l.Field != "" {
				if _, ok := wi.source[l.Field]; !ok {
					wi.source[l.Field] = l.Winning.Dot()
				}
			}
		}
		s.m.Decisions++
	}
	s.checkConverged()
}

// observe counts the conflicts rec shows at n and, at the resolver,
// schedules a person's resolution.
func (s *sim) observe(n *node, key string, rec *crdt.Record) {
	cs := s.strat.Conflicts(rec)
	if len(cs) == 0 {
		return
	}
	for _, c := range cs {
		var b strings.Builder
		b.WriteString(key)
		b.WriteByte(0)
		b.WriteString(c.Field)
		for _, e := range c.Candidates {
			b.WriteByte(0)
			b.WriteString(e.Dot().String())
		}
		sig := b.String()
		if !s.conflicts[sig] {
			s.conflicts[sig] = true
			s.m.Conflicts++
		}
	}
	if n == s.resolver && s.strat.PersonResolves() && s.sc.ResolveAfter >= 0 && !s.resolving[key] {
		s.resolving[key] = true
		table, id, _ := strings.Cut(key, "\x00")
		s.at(s.now+s.sc.ResolveAfter.Milliseconds(), func() { s.resolve(table, id) })
	}
}

// resolve is a person at the resolver keeping, for each conflict of the
// record, the highest-stamped candidate, with a write that has seen them
// all (as replicad's POST /v1/conflicts does).
func (s *sim) resolve(table, id string) {
	key := recKey(table, id)
	delete(s.resolving, key)
	n := s.resolver
	rec := n.rep.record(table, id)
	cs := s.strat.Conflicts(rec)
	if len(cs) == 0 {
		s.checkConverged()
		return
	}
	var fs []crdt.FieldValue
	for _, c := range cs {
		top := c.Candidates[len(c.Candidates)-1]
		if c.Field == "" {
			if top.Delete {
				s.localWrite(n, table, id, nil, true, resolutionWrite, rec.Context())
				return
			}
			continue
		}
		v := top.Value
		if top.Delete {
			v = crdt.Cleared
		}
		fs = append(fs, crdt.FieldValue{Name: c.Field, Value: v})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	s.localWrite(n, table, id, fs, false, resolutionWrite, rec.Context())
}

// trySync starts a session from a to b if they can talk and none is in
// progress between them (else it asks for one more when it ends).
func (s *sim) trySync(a, b *node) {
	if !s.canTalk(a, b) {
		return
	}
	if cur := a.sess[b.idx]; cur != nil {
		a.again[b.idx] = true
		return
	}
	if cur := b.sess[a.idx]; cur != nil {
		b.again[a.idx] = true
		return
	}
	ss := &session{a: a, b: b,
		sa: replication.NewSession(a.local, true),
		sb: replication.NewSession(b.local, false)}
	a.sess[b.idx] = ss
	ss.sendFree = [2]int64{s.now, s.now}
	s.m.Sessions++
	s.send(ss, 1, ss.sb.Start()) // nothing: the listener waits for Hello
	s.send(ss, 0, ss.sa.Start())
}

func (s *sim) send(ss *session, dir int, msgs []replication.Msg) {
	for _, m := range msgs {
		enc, err := replication.EncodeMsg(m)
		if err != nil {
			panic("lab: encode: " + err.Error())
		}
		size := len(enc) + 4 // the frame's length prefix
		if onSend != nil {
			onSend(m, size)
		}
		s.m.Bytes += int64(size)
		s.m.Messages++
		start := max(s.now, ss.sendFree[dir])
		tx := int64(0)
		if bw := s.sc.Net.BandwidthKbps; bw > 0 {
			tx = int64(math.Ceil(float64(size*8) / bw))
		}
		ss.sendFree[dir] = start + tx
		arrive := start + tx + s.sc.Net.Delay.Milliseconds()
		if j := s.sc.Net.Jitter.Milliseconds(); j > 0 {
			arrive += s.nrng.Int64N(j + 1)
		}
		arrive = max(arrive, ss.arrive[dir]) // a stream keeps its order
		ss.arrive[dir] = arrive
		lost := s.sc.Net.Loss > 0 && s.nrng.Float64() < s.sc.Net.Loss
		ss.inflight++
		m := m
		s.at(arrive, func() { s.deliver(ss, dir, m, lost) })
	}
}

func (s *sim) deliver(ss *session, dir int, m replication.Msg, lost bool) {
	ss.inflight--
	if ss.dead {
		return
	}
	if lost || !s.canTalk(ss.a, ss.b) {
		s.end(ss, true)
		return
	}
	dst := ss.sb
	if dir == 1 {
		dst = ss.sa
	}
	out, err := dst.Handle(m)
	s.send(ss, 1-dir, out)
	switch {
	case err != nil:
		s.end(ss, true)
	case ss.sa.Finished() && ss.sb.Finished():
		s.end(ss, false)
	case ss.inflight == 0:
		s.end(ss, true) // stalled: nothing in flight, not finished
	}
	s.checkConverged()
}

func (s *sim) end(ss *session, cut bool) {
	if ss.dead {
		return
	}
	ss.dead = true
	if cut {
		s.m.SessionsCut++
	}
	a, b := ss.a, ss.b
	a.sess[b.idx] = nil
	if a.again[b.idx] {
		a.again[b.idx] = false
		s.at(s.now, func() { s.trySync(a, b) })
	}
}

// converged: every replica holds every write made, and no decision or
// resolution is still to be made.
func (s *sim) converged() bool {
	if len(s.pending) > 0 || len(s.resolving) > 0 {
		return false
	}
	for _, n := range s.nodes {
		if n.rep.heldCount != s.total {
			return false
		}
	}
	return true
}

func (s *sim) checkConverged() {
	if s.converged() {
		if s.convergedSince < 0 || s.convergedSince < s.lastDisturb {
			s.convergedSince = s.now
		}
	} else {
		s.convergedSince = -1
	}
}

// quiet: after the workload, converged with nothing left to happen.
func (s *sim) quiet() bool {
	return s.convergedSince >= 0 && s.converged()
}
