package hlc_test

import (
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/replicad/replicad/hlc"
)

var seedFlag = flag.Uint64("hlc.seed", 0,
	"seed for the randomized property tests (default: several seeds derived from the test name)")

// testSeeds returns the seed given with -hlc.seed or, without it, n seeds
// derived from the test's name, so that every run checks the same cases and
// a failure names the one seed that replays it.
func testSeeds(t *testing.T, n int) []uint64 {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "hlc.seed" })
	if given {
		return []uint64{*seedFlag}
	}
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	x := h.Sum64()
	seeds := make([]uint64, n)
	for i := range seeds {
		// splitmix64
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		seeds[i] = z ^ z>>31
	}
	return seeds
}

const (
	simNodes  = 8
	simEvents = 20_000
	simSeeds  = 10
)

// TestClockProperties simulates simNodes replicas exchanging messages over a
// network with random delays, each with its own skewed and jumping physical
// clock, in a single-threaded discrete event loop, and checks the clock's
// guarantees after every event:
//
//	(a) each node's stamps strictly increase (across restarts too);
//	(b) a stamp a node accepted is below that node's next stamp;
//	(c) a stamp's wall part is at most the largest of the node's physical
//	    readings and the wall parts it accepted, plus the node's counter
//	    overflows (and at least the current physical reading);
//	(d) remote stamps beyond the bound are refused with an *OffsetError and
//	    leave the clock unchanged, all others are accepted;
//	(e) if event e happened before event f (vector clocks are the
//	    reference), then stamp(e) < stamp(f).
func TestClockProperties(t *testing.T) {
	var total simStats
	unbounded := 0
	for _, seed := range testSeeds(t, simSeeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			s := newSim(t, seed)
			s.run()
			t.Logf("seed %d: maxOffset %v, %d events: %+v (replay with -hlc.seed=%d)",
				seed, s.maxOffset, s.events, s.stats, seed)
			total.add(s.stats)
			if s.maxOffset <= 0 {
				unbounded++
			}
		})
	}
	t.Logf("all seeds: %+v", total)
	// The default seeds must reach every interesting case, or the test
	// proves less than it claims.
	if !t.Failed() && len(testSeeds(t, simSeeds)) > 1 {
		for _, c := range []struct {
			name string
			n    int
		}{
			{"seeds with the bound disabled", unbounded},
			{"refused stamps", total.Refused},
			{"counter overflows", total.Overflows},
			{"backward jumps", total.BackJumps},
			{"forward jumps", total.FwdJumps},
			{"restarts", total.Restarts},
			{"ratchet-only receives", total.Ratchets},
			{"happened-before pairs checked", total.HBPairs},
		} {
			if c.n == 0 {
				t.Errorf("the simulation had no %s; change its parameters", c.name)
			}
		}
	}
}

type simStats struct {
	Local, Sends, Recvs, Ratchets, Refused, Dropped, Ghosts int
	Overflows, BackJumps, FwdJumps, Restarts, HBPairs       int
}

func (a *simStats) add(b simStats) {
	a.Local += b.Local
	a.Sends += b.Sends
	a.Recvs += b.Recvs
	a.Ratchets += b.Ratchets
	a.Refused += b.Refused
	a.Dropped += b.Dropped
	a.Ghosts += b.Ghosts
	a.Overflows += b.Overflows
	a.BackJumps += b.BackJumps
	a.FwdJumps += b.FwdJumps
	a.Restarts += b.Restarts
	a.HBPairs += b.HBPairs
}

type simMsg struct {
	due   int64 // simulated global time of delivery, ms
	seq   uint64
	to    int
	ts    hlc.Timestamp
	vc    []uint32 // the sender's vector clock; nil for a ghost
	tries int
}

// msgQueue is a min-heap of messages by (due, seq).
type msgQueue []*simMsg

func (q msgQueue) Len() int { return len(q) }
func (q msgQueue) Less(i, j int) bool {
	if q[i].due != q[j].due {
		return q[i].due < q[j].due
	}
	return q[i].seq < q[j].seq
}
func (q msgQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *msgQueue) Push(x any)   { *q = append(*q, x.(*simMsg)) }
func (q *msgQueue) Pop() any {
	old := *q
	m := old[len(old)-1]
	*q = old[:len(old)-1]
	return m
}

type simNode struct {
	idx   int
	clock *hlc.Clock
	skew  int64 // physical clock minus global time, ms
	gran  int64 // physical clock resolution, ms

	// Reference state kept by the test.
	last        hlc.Timestamp   // the last stamp Now issued
	maxPT       int64           // largest physical reading at any event
	maxAccepted int64           // largest wall part of an accepted remote stamp
	overflows   int64           // counter overflows of this node's clock
	pending     hlc.Timestamp   // largest remote accepted since the last Now
	vc          []uint32        // vector clock
	stamps      []hlc.Timestamp // stamps of this node's events; vc[idx] == len(stamps)
}

type simEvent struct {
	node, k int // stamp is nodes[node].stamps[k]
	vc      []uint32
}

type sim struct {
	t         *testing.T
	seed      uint64
	rng       *rand.Rand
	now       int64 // global time, Unix ms
	maxOffset time.Duration
	bound     int64 // maxOffset in ms; 0: disabled
	scale     int64 // typical skew, ms
	nodes     []*simNode
	queue     msgQueue
	seq       uint64
	events    int
	all       []simEvent
	stats     simStats
}

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{
		t:    t,
		seed: seed,
		rng:  rand.New(rand.NewPCG(seed, seed^0x5eed)),
		now:  t0,
	}
	offsets := []time.Duration{0, 20 * time.Millisecond, 500 * time.Millisecond, time.Second, hlc.DefaultMaxOffset}
	s.maxOffset = offsets[s.rng.IntN(len(offsets))]
	s.bound = s.maxOffset.Milliseconds()
	s.scale = s.bound
	if s.scale <= 0 {
		s.scale = 1000
	}
	grans := []int64{1, 1, 1, 4, 16}
	for i := range simNodes {
		n := &simNode{idx: i, gran: grans[s.rng.IntN(len(grans))], vc: make([]uint32, simNodes)}
		if s.rng.IntN(4) == 0 {
			// Beyond the bound, ahead or behind.
			n.skew = s.scale + 1 + s.rng.Int64N(2*s.scale)
			if s.rng.IntN(2) == 0 {
				n.skew = -n.skew
			}
		} else {
			n.skew = s.rng.Int64N(s.scale+1) - s.scale/2
		}
		n.clock = hlc.NewClock(s.physFunc(n), s.maxOffset)
		s.nodes = append(s.nodes, n)
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, event %d, time %d: %s; replay with -hlc.seed=%d",
		s.seed, s.events, s.now, fmt.Sprintf(format, args...), s.seed)
}

func (s *sim) phys(n *simNode) int64 {
	pt := s.now + n.skew
	return pt - pt%n.gran
}

func (s *sim) physFunc(n *simNode) hlc.PhysicalClock {
	return func() int64 { return s.phys(n) }
}

func (s *sim) run() {
	for s.events < simEvents {
		switch x := s.rng.IntN(100); {
		case x < 50: // several events in the same millisecond
		case x < 90:
			s.now++
		default:
			s.now += 2 + s.rng.Int64N(10)
		}
		for len(s.queue) > 0 && s.queue[0].due <= s.now && s.events < simEvents {
			s.deliver(heap.Pop(&s.queue).(*simMsg))
			s.events++
		}
		if s.events == simEvents {
			break
		}
		n := s.nodes[s.rng.IntN(len(s.nodes))]
		switch x := s.rng.IntN(1000); {
		case x < 2:
			s.jump(n)
		case x < 3:
			s.restart(n)
		case x < 7:
			s.ghost(n)
		case x < 450:
			s.tick(n)
			s.stats.Local++
		default:
			s.send(n)
		}
		s.events++
	}
	s.checkSampledPairs()
}

// tick is a local event on n: a write, a send, or the receipt of a message.
func (s *sim) tick(n *simNode) hlc.Timestamp {
	s.t.Helper()
	pt := s.phys(n)
	n.maxPT = max(n.maxPT, pt)
	hw := n.clock.HighWater()
	if hw.Logical() == math.MaxUint16 && min(pt, hlc.MaxWall) <= hw.Wall() {
		n.overflows++
		s.stats.Overflows++
	}
	ts := n.clock.Now()

	// (a) monotonicity, and above everything issued or accepted.
	if ts <= n.last {
		s.fatalf("node %d: Now() = %v, want > its previous stamp %v", n.idx, ts, n.last)
	}
	if ts <= hw {
		s.fatalf("node %d: Now() = %v, want > HighWater() %v before it", n.idx, ts, hw)
	}
	if got := n.clock.HighWater(); got != ts {
		s.fatalf("node %d: HighWater() = %v after Now() = %v, want equal", n.idx, got, ts)
	}
	// (b) above every accepted remote stamp.
	if ts <= n.pending {
		s.fatalf("node %d: Now() = %v, want > the remote stamp %v it accepted", n.idx, ts, n.pending)
	}
	// (c) bounded drift from physical time.
	if limit := max(n.maxPT, n.maxAccepted) + n.overflows; ts.Wall() > limit {
		s.fatalf("node %d: Now() = %v, want wall <= %d (max physical %d, max accepted wall %d, %d overflows)",
			n.idx, ts, limit, n.maxPT, n.maxAccepted, n.overflows)
	}
	if ts.Wall() < pt {
		s.fatalf("node %d: Now() = %v, want wall >= physical time %d", n.idx, ts, pt)
	}
	n.last = ts
	n.pending = 0

	// (e) above the latest event of every node that happened before this one
	// (the earlier events of that node are below it by (a)).
	n.vc[n.idx]++
	n.stamps = append(n.stamps, ts)
	for j, k := range n.vc {
		if j == n.idx || k == 0 {
			continue
		}
		if pred := s.nodes[j].stamps[k-1]; pred >= ts {
			s.fatalf("node %d: event %d of node %d (stamp %v) happened before event %d of node %d (stamp %v), want a smaller stamp",
				j, k-1, j, pred, len(n.stamps)-1, n.idx, ts)
		}
	}
	s.all = append(s.all, simEvent{node: n.idx, k: len(n.stamps) - 1, vc: slices.Clone(n.vc)})
	return ts
}

func (s *sim) send(from *simNode) {
	ts := s.tick(from)
	s.stats.Sends++
	vc := slices.Clone(from.vc)
	for _, to := range s.rng.Perm(len(s.nodes)) {
		if to == from.idx {
			continue
		}
		var delay int64
		switch x := s.rng.IntN(100); {
		case x < 70:
			delay = s.rng.Int64N(20)
		case x < 95:
			delay = 20 + s.rng.Int64N(500)
		default:
			delay = 500 + s.rng.Int64N(5000)
		}
		s.push(&simMsg{due: s.now + delay, to: to, ts: ts, vc: vc})
		if s.rng.IntN(20) != 0 { // occasionally a broadcast
			break
		}
	}
}

func (s *sim) push(m *simMsg) {
	s.seq++
	m.seq = s.seq
	heap.Push(&s.queue, m)
}

// ghost delivers a stamp from outside the simulated nodes (no causal
// history), often with a full counter, to exercise overflow and refusal.
func (s *sim) ghost(n *simNode) {
	pt := s.phys(n)
	off := s.rng.Int64N(2*s.scale+1) - s.scale
	if s.bound > 0 && s.rng.IntN(5) < 2 {
		off = s.bound + 1 + s.rng.Int64N(2*s.bound)
	}
	s.stats.Ghosts++
	s.deliver(&simMsg{to: n.idx, ts: hlc.New(pt+off, math.MaxUint16-uint16(s.rng.IntN(3)))})
}

func (s *sim) deliver(m *simMsg) {
	s.t.Helper()
	r := s.nodes[m.to]
	pt := s.phys(r)
	hw := r.clock.HighWater()
	wantRefuse := s.bound > 0 && m.ts.Wall()-pt > s.bound
	checkErr := r.clock.Check(m.ts)
	err := r.clock.Update(m.ts)

	// (d) refused exactly beyond the bound, and then without effect.
	if !wantRefuse {
		if checkErr != nil || err != nil {
			s.fatalf("node %d at physical %d, bound %v: Check, Update(%v) = %v, %v; want nil, nil",
				r.idx, pt, s.maxOffset, m.ts, checkErr, err)
		}
		if got, want := r.clock.HighWater(), max(hw, m.ts); got != want {
			s.fatalf("node %d: HighWater() after Update(%v) = %v, want %v", r.idx, m.ts, got, want)
		}
		r.maxAccepted = max(r.maxAccepted, m.ts.Wall())
		r.pending = max(r.pending, m.ts)
		for j, k := range m.vc {
			r.vc[j] = max(r.vc[j], k)
		}
		if s.rng.IntN(10) < 7 {
			s.tick(r) // the paper's receive event
			s.stats.Recvs++
		} else {
			s.stats.Ratchets++ // replicad's batch apply: ratchet only
		}
		return
	}
	if !errors.Is(checkErr, hlc.ErrClockOffset) {
		s.fatalf("node %d at physical %d, bound %v: Check(%v) = %v, want ErrClockOffset",
			r.idx, pt, s.maxOffset, m.ts, checkErr)
	}
	var oe *hlc.OffsetError
	if !errors.As(err, &oe) {
		s.fatalf("node %d at physical %d, bound %v: Update(%v) = %v, want an *OffsetError",
			r.idx, pt, s.maxOffset, m.ts, err)
	}
	if oe.Remote != m.ts || oe.Physical != pt || oe.MaxOffset != s.maxOffset {
		s.fatalf("node %d: OffsetError{Remote %v, Physical %d, MaxOffset %v}, want {%v, %d, %v}",
			r.idx, oe.Remote, oe.Physical, oe.MaxOffset, m.ts, pt, s.maxOffset)
	}
	if got := r.clock.HighWater(); got != hw {
		s.fatalf("node %d: HighWater() after refused Update(%v) = %v, want unchanged %v", r.idx, m.ts, got, hw)
	}
	s.stats.Refused++
	// Park it and retry a few times; the receiver's clock may catch up.
	if m.tries++; m.vc != nil && m.tries < 4 {
		m.due = s.now + 1 + s.rng.Int64N(s.bound)
		s.push(m)
	} else {
		s.stats.Dropped++
	}
}

// jump steps n's physical clock back or forward.
func (s *sim) jump(n *simNode) {
	d := 1 + s.rng.Int64N(2*s.scale)
	switch s.rng.IntN(3) {
	case 0:
		n.skew -= d
		s.stats.BackJumps++
	case 1:
		n.skew += d
		s.stats.FwdJumps++
	default: // resynchronised
		old := n.skew
		n.skew = s.rng.Int64N(s.scale+1) - s.scale/2
		if n.skew < old {
			s.stats.BackJumps++
		} else {
			s.stats.FwdJumps++
		}
	}
	n.skew = min(max(n.skew, -5*s.scale), 5*s.scale)
}

// restart replaces n's clock with a new one whose physical clock went back,
// restored from the old one's high-water mark.
func (s *sim) restart(n *simNode) {
	hw := n.clock.HighWater()
	n.skew = max(n.skew-1-s.rng.Int64N(s.scale), -5*s.scale)
	s.stats.Restarts++
	n.clock = hlc.NewClock(s.physFunc(n), s.maxOffset)
	n.clock.Restore(hw)
	if got := n.clock.HighWater(); got != hw {
		s.fatalf("node %d: HighWater() after restart and Restore(%v) = %v, want %v", n.idx, hw, got, hw)
	}
}

// checkSampledPairs checks (e) directly on random pairs of events, half of
// them close together, where happened-before is likely.
func (s *sim) checkSampledPairs() {
	s.t.Helper()
	if len(s.all) < 2 {
		return
	}
	stamp := func(e simEvent) hlc.Timestamp { return s.nodes[e.node].stamps[e.k] }
	for i := range 40_000 {
		fi := s.rng.IntN(len(s.all))
		ei := s.rng.IntN(len(s.all))
		if i%2 == 0 {
			ei = max(0, fi-1-s.rng.IntN(500))
		}
		e, f := s.all[ei], s.all[fi]
		if ei == fi || !happenedBefore(e.vc, f.vc) {
			continue
		}
		s.stats.HBPairs++
		if stamp(e) >= stamp(f) {
			s.fatalf("event %d of node %d (stamp %v) happened before event %d of node %d (stamp %v), want a smaller stamp",
				e.k, e.node, stamp(e), f.k, f.node, stamp(f))
		}
	}
}

// happenedBefore reports whether vector clock a is strictly below b.
func happenedBefore(a, b []uint32) bool {
	for j := range a {
		if a[j] > b[j] {
			return false
		}
	}
	return !slices.Equal(a, b)
}
