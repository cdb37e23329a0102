package replication

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

var flagSeed = flag.Uint64("sync.seed", 0, "seed for randomized sync tests (0: derived from the test name)")

// seedFor returns the seed for t: the -sync.seed flag, or a hash of the
// test's name, so that every run of a test is the same run.
func seedFor(t testing.TB) uint64 {
	if *flagSeed != 0 {
		return *flagSeed
	}
	h := sha256.Sum256([]byte(t.Name()))
	s := uint64(0)
	for _, b := range h[:8] {
		s = s<<8 | uint64(b)
	}
	return s
}

// simStateMinWrites is the Local.StateMinWrites of the sim's nodes (tests
// that run the random histories with record states set it).
var simStateMinWrites int

// simArbitrated is the sim nodes' Local.Arbitrated: no table, unless a
// test with arbitrated tables says which.
var simArbitrated = func(string) bool { return false }

// simNode is one replica in a deterministic in-process simulation: a real
// store on an in-memory filesystem, a clock on simulated time.
type simNode struct {
	name  string
	st    *store.Store
	phys  int64
	clock *hlc.Clock
	local *Local
	acked []*crdt.Write // writes this node made and had acknowledged
}

type sim struct {
	t      testing.TB
	seed   uint64
	rng    *rand.Rand
	nodes  []*simNode
	byName map[string]*simNode
	log    []string // what happened, printed on failure
}

func newSim(t testing.TB) *sim {
	seed := seedFor(t)
	t.Logf("seed %d (replay with -sync.seed=%d)", seed, seed)
	return &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 7)), byName: map[string]*simNode{}}
}

func (s *sim) add(name, role string, scope Scope) *simNode {
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/data", NoSync: true, ClusterID: "sim",
		MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: hlc.NodeID(len(s.nodes) + 1)})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	n := &simNode{name: name, st: st, phys: 1_700_000_000_000}
	n.clock = hlc.NewClock(func() int64 { return n.phys }, hlc.DefaultMaxOffset)
	n.local = &Local{Node: st.NodeID(), Cluster: "sim", Role: role, Scope: scope, Clock: n.clock, Store: st, StateMinWrites: simStateMinWrites, Arbitrated: simArbitrated}
	s.nodes = append(s.nodes, n)
	s.byName[name] = n
	return n
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	tail := s.log
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	s.t.Fatalf("seed %d: %s\nlast events:\n  %s\nreplay with -sync.seed=%d", s.seed, fmt.Sprintf(format, args...), joinLines(tail), s.seed)
}

func joinLines(l []string) string {
	out := ""
	for i, x := range l {
		if i > 0 {
			out += "\n  "
		}
		out += x
	}
	return out
}

// write makes a local write at n through the store, as the API would.
func (s *sim) write(n *simNode, table, id string, fields map[string]any, del bool) *crdt.Write {
	var fs []crdt.FieldValue
	for k, v := range fields {
		fs = append(fs, crdt.FieldValue{Name: k, Value: crdt.MustValue(v)})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	r, err := n.st.WriteWith(n.clock, table, id, fs, del, n.local.LocalWriteHook())
	if errors.Is(err, store.ErrOutOfScope) {
		return nil // as the API does: the record is not in this replica's scope
	}
	if err != nil {
		s.fail("write at %s: %v", n.name, err)
	}
	n.acked = append(n.acked, r.Write)
	return r.Write
}

var errCut = errors.New("session cut")

// session runs one sync session between a (dialer) and b to completion,
// passing every message through the wire codec, in a random interleaving.
// cutAfter > 0 cuts the session after that many messages.
func (s *sim) session(a, b *simNode, cutAfter int) (Stats, Stats, error) {
	sa, sb := NewSession(a.local, true), NewSession(b.local, false)
	toB, toA := sa.Start(), sb.Start()
	delivered := 0
	for !(sa.Finished() && sb.Finished()) {
		if len(toA) == 0 && len(toB) == 0 {
			return sa.Stats, sb.Stats, fmt.Errorf("session %s-%s stalled", a.name, b.name)
		}
		if cutAfter > 0 && delivered == cutAfter {
			return sa.Stats, sb.Stats, errCut
		}
		var m Msg
		var dst *Session
		if len(toA) == 0 || (len(toB) > 0 && s.rng.IntN(2) == 0) {
			m, toB, dst = toB[0], toB[1:], sb
		} else {
			m, toA, dst = toA[0], toA[1:], sa
		}
		enc, err := EncodeMsg(m)
		if err != nil {
			return sa.Stats, sb.Stats, err
		}
		m2, err := DecodeMsg(enc)
		if err != nil {
			return sa.Stats, sb.Stats, fmt.Errorf("decode %v: %w", m.Type(), err)
		}
		delivered++
		out, err := dst.Handle(m2)
		if dst == sa {
			toB = append(toB, out...)
		} else {
			toA = append(toA, out...)
		}
		if err != nil {
			return sa.Stats, sb.Stats, err
		}
	}
	return sa.Stats, sb.Stats, nil
}

func (s *sim) mustSync(a, b *simNode) {
	s.t.Helper()
	if _, _, err := s.session(a, b, 0); err != nil {
		s.fail("sync %s-%s: %v", a.name, b.name, err)
	}
	s.log = append(s.log, fmt.Sprintf("sync %s-%s", a.name, b.name))
}

// digest is a digest of every record n holds.
func digest(t testing.TB, n *simNode, only ...string) [32]byte {
	h := sha256.New()
	tables, err := n.st.Tables()
	if err != nil {
		t.Fatal(err)
	}
	if len(only) > 0 {
		tables = only
	}
	for _, tb := range tables {
		after := ""
		for {
			recs, next, err := n.st.Scan(tb, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				h.Write([]byte(tb + "\x00" + r.ID + "\x00"))
				r.Record.WriteDigest(h)
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
