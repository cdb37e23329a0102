package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// crashLedger records, for a workload, which writes were acknowledged and
// which writes (and empty ranges) each batch carried.
type crashLedger struct {
	mu      sync.Mutex
	acked   map[crdt.Dot]bool
	batches [][]crdt.Dot // each batch's applied dots (empty ranges as dots too)
}

func newLedger() *crashLedger { return &crashLedger{acked: map[crdt.Dot]bool{}} }

func (l *crashLedger) batch(ds []crdt.Dot) {
	l.mu.Lock()
	l.batches = append(l.batches, ds)
	l.mu.Unlock()
}

func (l *crashLedger) ack(ds ...crdt.Dot) {
	l.mu.Lock()
	for _, d := range ds {
		l.acked[d] = true
	}
	l.mu.Unlock()
}

func (l *crashLedger) snapshot() (map[crdt.Dot]bool, [][]crdt.Dot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := make(map[crdt.Dot]bool, len(l.acked))
	for d := range l.acked {
		a[d] = true
	}
	return a, append([][]crdt.Dot(nil), l.batches...)
}

// checkReopened opens the store in dir on fs and checks the crash
// invariants: Verify passes, every acknowledged write is held (and so
// logged and applied, by Verify), and every batch is all there or not at
// all.
func checkReopened(fs vfs.FS, dir string, acked map[crdt.Dot]bool, batches [][]crdt.Dot) error {
	s, err := Open(Options{Dir: dir, FS: fs})
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer s.Close()
	if err := s.Verify(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	held := s.Holdings()
	for d := range acked {
		if !held[d.Node].Contains(d.Seq) {
			return fmt.Errorf("acknowledged write %v lost", d)
		}
	}
	for i, b := range batches {
		n := 0
		for _, d := range b {
			if held[d.Node].Contains(d.Seq) {
				n++
			}
		}
		if n != 0 && n != len(b) {
			return fmt.Errorf("batch %d partially visible: %d of %v", i, n, b)
		}
	}
	return nil
}

// crashWorkload drives a store with seeded local writes and remote batches.
type crashWorkload struct {
	s     *Store
	clock *hlc.Clock
	p     *peer
	led   *crashLedger
	mu    sync.Mutex // guards p's generation and sent
	sent  uint64     // peer writes handed out so far
}

func (c *crashWorkload) localOp(t testing.TB, rng *rand.Rand) error {
	id := fmt.Sprint("r", rng.IntN(8))
	var fields []crdt.FieldValue
	del := rng.IntN(8) == 0
	if !del {
		fields = []crdt.FieldValue{fv(fmt.Sprint("f", rng.IntN(3)), rng.IntN(100))}
	}
	r, err := c.s.WriteWith(c.clock, "t", id, fields, del, func(b *Batch, r *WriteResult) error {
		c.led.batch([]crdt.Dot{r.Write.Dot()})
		return nil
	})
	if err != nil {
		return err
	}
	c.led.ack(r.Write.Dot())
	return nil
}

func (c *crashWorkload) remoteOp(t testing.TB, rng *rand.Rand) error {
	c.mu.Lock()
	n := 1 + rng.IntN(6)
	for i := 0; i < n; i++ {
		c.p.randWrite(t, rng, 6)
	}
	ws := c.p.stream(t, c.sent)
	if rng.IntN(4) == 0 && c.sent > 0 {
		ws = append(c.p.stream(t, c.sent-1)[:1], ws...) // a duplicate
	}
	c.sent += uint64(n)
	c.mu.Unlock()
	var empties map[hlc.NodeID][]SeqRange
	if rng.IntN(3) == 0 {
		lo := 1 + uint64(rng.IntN(1000))
		empties = map[hlc.NodeID][]SeqRange{77: {{lo, lo + uint64(rng.IntN(3))}}}
	}
	var applied []crdt.Dot
	_, err := c.s.ApplyRemoteWith(c.clock, ws, empties, func(b *Batch, r *Result) error {
		for i, st := range r.Status {
			if st == Applied {
				applied = append(applied, ws[i].Dot())
			}
		}
		ds := append([]crdt.Dot(nil), applied...)
		for _, rg := range empties[77] {
			for q := rg.Lo; q <= rg.Hi; q++ {
				if !c.s.HeldOf(77).Contains(q) {
					ds = append(ds, crdt.Dot{Node: 77, Seq: q})
				}
			}
		}
		c.led.batch(ds)
		return nil
	})
	if err != nil {
		return err
	}
	c.led.ack(applied...)
	return nil
}

// TestCrashPoints takes 1,000 crash clones of a crashable in-memory
// filesystem while writes are in flight, and checks each reopened clone.
func TestCrashPoints(t *testing.T) {
	const rounds, points = 50, 20
	total := 0
	for round := 0; round < rounds; round++ {
		seed := uint64(round + 1)
		fs := vfs.NewCrashableMem()
		s := mustOpen(t, Options{Dir: "/db", FS: fs})
		rng := rand.New(rand.NewPCG(seed, 1))
		w := &crashWorkload{s: s, clock: fakeClock(t0), p: newPeer(t, t0), led: newLedger()}
		for point := 0; point < points; point++ {
			w.crashPoint(t, fs, rng, seed, point)
			total++
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("seed %d: live store: %v", seed, err)
		}
		s.Close()
	}
	t.Logf("%d crash points checked", total)
}

// crashPoint is one crash point of the workload on fs (the store's
// crashable filesystem): it launches 1-3 concurrent operations (each
// local or remote, with its own RNG seeded from seed and point), takes a
// crash clone of fs after a seeded number of them completed (a seeded
// share of the unsynced data kept), waits for the others, and checks the
// store reopened from the clone (checkReopened). It returns the clone.
func (c *crashWorkload) crashPoint(t *testing.T, fs *vfs.MemFS, rng *rand.Rand, seed uint64, point int) *vfs.MemFS {
	t.Helper()
	g := 1 + rng.IntN(3)
	wait := rng.IntN(g + 1)
	done := make(chan error, g)
	for i := 0; i < g; i++ {
		orng := rand.New(rand.NewPCG(seed, uint64(point*10+i+2)))
		local := rng.IntN(2) == 0
		go func() {
			if local {
				done <- c.localOp(t, orng)
			} else {
				done <- c.remoteOp(t, orng)
			}
		}()
	}
	for i := 0; i < wait; i++ {
		if err := <-done; err != nil {
			t.Fatalf("seed %d point %d: %v", seed, point, err)
		}
	}
	acked, batches := c.led.snapshot()
	clone := fs.CrashClone(vfs.CrashCloneCfg{
		UnsyncedDataPercent: []int{0, 0, 30, 70, 100}[rng.IntN(5)],
		RNG:                 rand.New(rand.NewPCG(seed, uint64(point)+1000)),
	})
	for i := wait; i < g; i++ {
		if err := <-done; err != nil {
			t.Fatalf("seed %d point %d: %v", seed, point, err)
		}
	}
	if err := checkReopened(clone, "/db", acked, batches); err != nil {
		t.Fatalf("seed %d crash point %d: %v", seed, point, err)
	}
	return clone
}
