package store

import (
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestIndexCrashPoints: crash clones taken while writes are in flight on
// a store with indexes (one declared before the writes, one declared on
// the records in the middle, whose background build a crash interrupts):
// after every crash, Verify finds each index agreeing with the records
// (and the usual crash invariants hold), and the reopened store finishes
// the interrupted build.
func TestIndexCrashPoints(t *testing.T) {
	const rounds, points = 12, 15
	total := 0
	for round := 0; round < rounds; round++ {
		seed := uint64(round + 1)
		fs := vfs.NewCrashableMem()
		s := mustOpen(t, Options{Dir: "/db", FS: fs})
		if err := s.DeclareIndex(IndexDef{Name: "f0", Table: "t", Fields: []string{"f0"}}); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		w := &crashWorkload{s: s, clock: fakeClock(t0), p: newPeer(t, t0), led: newLedger()}
		for point := 0; point < points; point++ {
			if point == points/2 {
				if err := s.DeclareIndex(IndexDef{Name: "f12", Table: "t", Fields: []string{"f1", "f2"}}); err != nil {
					t.Fatal(err)
				}
			}
			clone := w.crashPoint(t, fs, rng, seed, point)
			// The reopened clone finishes its builds and still agrees.
			c := mustOpen(t, Options{Dir: "/db", FS: clone})
			if err := c.WaitIndexes(); err != nil {
				t.Fatal(err)
			}
			for _, ix := range c.Indexes() {
				if !ix.Built {
					t.Fatalf("seed %d point %d: index %s not built", seed, point, ix.Name)
				}
			}
			if err := c.Verify(); err != nil {
				t.Fatalf("seed %d crash point %d, after the build: %v", seed, point, err)
			}
			c.Close()
			total++
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("seed %d: live store: %v", seed, err)
		}
		s.Close()
	}
	t.Logf("%d crash points checked", total)
}
