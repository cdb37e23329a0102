package crdt

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/replicad/replicad/hlc"
)

var (
	flagSeed      = flag.Uint64("crdt.seed", 0, "first seed of the randomized histories (0: fixed default)")
	flagHistories = flag.Int("crdt.histories", 0, "number of randomized histories (0: default for the mode)")
)

// sim is one randomized history: replicas making writes and deletes on a
// few records and exchanging them in random order with duplicates. Each
// replica buffers writes that arrive ahead of their origin's order, as the
// store does.
type sim struct {
	rng      *rand.Rand
	replicas []*replica
	all      []*Write // every write made, in creation order
	records  []string
	fields   []string
}

type replica struct {
	id      hlc.NodeID
	clock   *hlc.Clock
	phys    int64
	seq     uint64
	next    map[hlc.NodeID]uint64 // next expected seq per origin
	buf     map[hlc.NodeID]map[uint64]*Write
	recs    map[string]*Record
	applied []*Write // in application order: what it forwards
}

func newSim(seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{rng: rng}
	n := 3 + rng.IntN(4)
	for i := 0; i < n; i++ {
		r := &replica{
			id:   hlc.NodeID(i + 1),
			phys: 1000 + rng.Int64N(50), // skewed physical clocks
			next: map[hlc.NodeID]uint64{},
			buf:  map[hlc.NodeID]map[uint64]*Write{},
			recs: map[string]*Record{},
		}
		rp := r
		r.clock = hlc.NewClock(func() int64 { return rp.phys }, 0)
		s.replicas = append(s.replicas, r)
	}
	s.records = []string{"r1", "r2", "r3"}[:1+rng.IntN(3)]
	s.fields = []string{"a", "b", "c", "d"}[:1+rng.IntN(4)]
	return s
}

func (r *replica) rec(id string) *Record {
	x := r.recs[id]
	if x == nil {
		x = &Record{}
		r.recs[id] = x
	}
	return x
}

// local makes a write or delete at r.
func (s *sim) local(r *replica) {
	id := s.records[s.rng.IntN(len(s.records))]
	rec := r.rec(id)
	r.seq++
	w := &Write{Table: "t", ID: id, Origin: r.id, Seq: r.seq, TS: r.clock.Now(), Ctx: rec.Context()}
	if s.rng.IntN(6) == 0 {
		w.Delete = true
	} else {
		k := 1 + s.rng.IntN(len(s.fields))
		perm := s.rng.Perm(len(s.fields))[:k]
		sort.Ints(perm)
		for _, fi := range perm {
			v := MustValue(fmt.Sprintf("%d.%d.%s", r.id, r.seq, s.fields[fi]))
			if s.rng.IntN(10) == 0 {
				v = Cleared
			}
			w.Fields = append(w.Fields, FieldValue{s.fields[fi], v})
		}
	}
	if err := w.Validate(); err != nil {
		panic(err)
	}
	s.all = append(s.all, w)
	r.receive(w)
}

// receive buffers w until its origin's earlier writes are applied.
func (r *replica) receive(w *Write) {
	if w.Seq < r.nextOf(w.Origin) {
		// Duplicate of an applied write: apply anyway, it must be a no-op.
		rec := r.rec(w.ID)
		before := rec.Digest()
		var out Outcome
		rec.Apply(w, &out)
		if !out.Duplicate || rec.Digest() != before {
			panic(fmt.Sprintf("duplicate %v changed the record", w.Dot()))
		}
		return
	}
	m := r.buf[w.Origin]
	if m == nil {
		m = map[uint64]*Write{}
		r.buf[w.Origin] = m
	}
	m[w.Seq] = w
	for {
		nx := r.nextOf(w.Origin)
		b, ok := m[nx]
		if !ok {
			return
		}
		delete(m, nx)
		if err := r.clock.Update(b.TS); err != nil {
			panic(err)
		}
		r.rec(b.ID).Apply(b, nil)
		r.applied = append(r.applied, b)
		r.next[b.Origin] = nx + 1
	}
}

func (r *replica) nextOf(o hlc.NodeID) uint64 {
	if n := r.next[o]; n != 0 {
		return n
	}
	return 1
}

// gossip sends a random subset of what from has applied to to, shuffled,
// with duplicates.
func (s *sim) gossip(from, to *replica) {
	if len(from.applied) == 0 {
		return
	}
	k := 1 + s.rng.IntN(len(from.applied))
	msgs := make([]*Write, 0, k+2)
	for i := 0; i < k; i++ {
		msgs = append(msgs, from.applied[s.rng.IntN(len(from.applied))])
	}
	s.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	for _, w := range msgs {
		to.receive(w)
	}
}

func (s *sim) run(steps int) {
	for i := 0; i < steps; i++ {
		for _, r := range s.replicas {
			r.phys += s.rng.Int64N(3) // time passes unevenly, sometimes not at all
		}
		if s.rng.IntN(3) == 0 {
			s.local(s.replicas[s.rng.IntN(len(s.replicas))])
		} else {
			a, b := s.rng.IntN(len(s.replicas)), s.rng.IntN(len(s.replicas))
			if a != b {
				s.gossip(s.replicas[a], s.replicas[b])
			}
		}
	}
}

// heal delivers every write to every replica, in a random order.
func (s *sim) heal() {
	for _, r := range s.replicas {
		order := s.rng.Perm(len(s.all))
		for _, i := range order {
			r.receive(s.all[i])
		}
	}
}

// oracle computes, from the set of all writes, the live candidates of a
// field and of the existence register: those no other relevant write had
// seen.
func oracleLive(ws []*Write, covers func(w *Write) bool, relevant func(w *Write) bool) []Dot {
	var out []Dot
	for _, w := range ws {
		if !relevant(w) {
			continue
		}
		dead := false
		for _, o := range ws {
			if o != w && covers(o) && o.Ctx.Covers(w.Dot()) {
				dead = true
				break
			}
		}
		if !dead {
			out = append(out, w.Dot())
		}
	}
	return out
}

func dotsOf(es []Entry) []Dot {
	var out []Dot
	for _, e := range es {
		out = append(out, e.Dot())
	}
	return out
}

func sameDots(a, b []Dot) bool {
	sort.Slice(a, func(i, j int) bool { return a[i].Node < a[j].Node || a[i].Node == a[j].Node && a[i].Seq < a[j].Seq })
	sort.Slice(b, func(i, j int) bool { return b[i].Node < b[j].Node || b[i].Node == b[j].Node && b[i].Seq < b[j].Seq })
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *sim) check() error {
	first := s.replicas[0]
	for _, id := range s.records {
		var ws []*Write
		for _, w := range s.all {
			if w.ID == id {
				ws = append(ws, w)
			}
		}
		ref := first.rec(id)
		if msg := ref.Check(); msg != "" {
			return fmt.Errorf("record %s on %v: invariant: %s", id, first.id, msg)
		}
		for _, r := range s.replicas[1:] {
			if r.rec(id).Digest() != ref.Digest() {
				return fmt.Errorf("record %s: replica %v and %v diverged:\n%+v\n%+v", id, first.id, r.id, ref, r.rec(id))
			}
		}
		// Against the oracle.
		exist := oracleLive(ws, func(*Write) bool { return true }, func(*Write) bool { return true })
		if !sameDots(exist, dotsOf(ref.Exist)) {
			return fmt.Errorf("record %s: existence %v, oracle %v", id, dotsOf(ref.Exist), exist)
		}
		for _, f := range s.fields {
			sets := func(w *Write) bool {
				if w.Delete {
					return true
				}
				for _, fv := range w.Fields {
					if fv.Name == f {
						return true
					}
				}
				return false
			}
			live := oracleLive(ws, sets, sets)
			got := dotsOf(ref.Candidates(f))
			if !sameDots(live, got) {
				return fmt.Errorf("record %s field %s: candidates %v, oracle %v\n%+v", id, f, got, live, ref)
			}
			// A write never loses to one it had seen.
			if e, ok := ref.Winner(f); ok {
				for _, w := range ws {
					if w.Dot() != e.Dot() && sets(w) && w.Ctx.Covers(e.Dot()) {
						return fmt.Errorf("record %s field %s: winner %v was seen by %v", id, f, e.Dot(), w.Dot())
					}
				}
			}
		}
		// Merge of whole states: commutative, associative, idempotent, and
		// equal to what delivery reached.
		a, b, c := s.partial(id, 0), s.partial(id, 1), s.partial(id, 2)
		ab := a.Clone()
		ab.Merge(b)
		ba := b.Clone()
		ba.Merge(a)
		if ab.Digest() != ba.Digest() {
			return fmt.Errorf("record %s: merge not commutative:\n%+v\n%+v", id, ab, ba)
		}
		abc := ab.Clone()
		abc.Merge(c)
		bc := b.Clone()
		bc.Merge(c)
		a2 := a.Clone()
		a2.Merge(bc)
		if abc.Digest() != a2.Digest() {
			return fmt.Errorf("record %s: merge not associative", id)
		}
		aa := a.Clone()
		aa.Merge(a)
		if aa.Digest() != a.Digest() {
			return fmt.Errorf("record %s: merge not idempotent", id)
		}
		if msg := abc.Check(); msg != "" {
			return fmt.Errorf("record %s: merged state invariant: %s", id, msg)
		}
		full := abc.Clone()
		full.Merge(ref)
		if full.Digest() != ref.Digest() {
			return fmt.Errorf("record %s: merging partial states into the converged one changed it:\n%+v\n%+v", id, full, ref)
		}
	}
	return nil
}

// partial rebuilds record id from a random per-origin-ordered prefix of the
// writes: a whole state as some replica could have held it mid-history.
func (s *sim) partial(id string, salt int) *Record {
	rng := rand.New(rand.NewPCG(uint64(len(s.all)), uint64(salt)))
	cut := map[hlc.NodeID]uint64{}
	for _, r := range s.replicas {
		cut[r.id] = uint64(rng.IntN(int(r.seq) + 1))
	}
	var ws []*Write
	for _, w := range s.all {
		if w.ID == id && w.Seq <= cut[w.Origin] {
			ws = append(ws, w)
		}
	}
	// Deliver in a random interleaving that keeps each origin's order.
	rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Origin == ws[j].Origin && ws[i].Seq < ws[j].Seq })
	byOrigin := map[hlc.NodeID][]*Write{}
	for _, w := range ws {
		byOrigin[w.Origin] = append(byOrigin[w.Origin], w)
	}
	for _, l := range byOrigin {
		sort.Slice(l, func(i, j int) bool { return l[i].Seq < l[j].Seq })
	}
	rec := &Record{}
	for {
		var origins []hlc.NodeID
		for o, l := range byOrigin {
			if len(l) > 0 {
				origins = append(origins, o)
			}
		}
		if len(origins) == 0 {
			return rec
		}
		sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
		o := origins[rng.IntN(len(origins))]
		rec.Apply(byOrigin[o][0], nil)
		byOrigin[o] = byOrigin[o][1:]
	}
}

func runHistory(seed uint64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	s := newSim(seed)
	s.run(5 + s.rng.IntN(40))
	s.heal()
	return s.check()
}

func TestRandomHistories(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 5_000
	}
	if *flagHistories > 0 {
		n = *flagHistories
	}
	base := *flagSeed
	if base == 0 {
		base = 1
	}
	t.Logf("%d histories from seed %d", n, base)
	for i := 0; i < n; i++ {
		seed := base + uint64(i)
		if err := runHistory(seed); err != nil {
			t.Fatalf("history seed %d: %v\nreplay with: go test ./crdt -run TestRandomHistories -crdt.seed=%d -crdt.histories=1", seed, err, seed)
		}
	}
}
