package store

import (
	"math/rand/v2"
	"testing"
)

// TestHeldAgainstNaive checks Held against a plain set on random adds.
func TestHeldAgainstNaive(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var h Held
		set := map[uint64]bool{}
		for op := 0; op < 30; op++ {
			lo := uint64(rng.IntN(60))
			hi := lo + uint64(rng.IntN(5))
			h.Add(lo, hi)
			for q := max(lo, 1); q <= hi; q++ {
				set[q] = true
			}
			if err := h.Check(); err != nil {
				t.Fatalf("seed %d: %v: %v", seed, h, err)
			}
			var maxq uint64
			for q := uint64(0); q <= 70; q++ {
				if h.Contains(q) != set[q] {
					t.Fatalf("seed %d: %v contains %d = %v", seed, h, q, h.Contains(q))
				}
				if set[q] {
					maxq = q
				}
			}
			if h.Max() != maxq {
				t.Fatalf("seed %d: max %d want %d", seed, h.Max(), maxq)
			}
			// Gaps are exactly the missing seqs below Max.
			gapped := map[uint64]bool{}
			for _, g := range h.Gaps() {
				for q := g.Lo; q <= g.Hi; q++ {
					gapped[q] = true
				}
			}
			for q := uint64(1); q <= maxq; q++ {
				if gapped[q] == set[q] {
					t.Fatalf("seed %d: gaps %v wrong at %d", seed, h.Gaps(), q)
				}
			}
			// Missing against another random Held.
			var o Held
			oset := map[uint64]bool{}
			for i := 0; i < 4; i++ {
				l := uint64(1 + rng.IntN(60))
				r := l + uint64(rng.IntN(8))
				o.Add(l, r)
				for q := l; q <= r; q++ {
					oset[q] = true
				}
			}
			miss := map[uint64]bool{}
			for _, m := range h.Missing(o) {
				for q := m.Lo; q <= m.Hi; q++ {
					miss[q] = true
				}
			}
			for q := uint64(1); q <= 80; q++ {
				if miss[q] != (oset[q] && !set[q]) {
					t.Fatalf("seed %d: %v missing of %v wrong at %d: %v", seed, h, o, q, h.Missing(o))
				}
			}
			f, err := heldFromFlat(h.flat())
			if err != nil || !f.Equal(h) {
				t.Fatalf("seed %d: flat round trip %v -> %v %v", seed, h, f, err)
			}
		}
	}
}

func TestHeldCheckRejects(t *testing.T) {
	for _, h := range []Held{
		{Contig: 3, Ranges: []SeqRange{{4, 5}}},         // adjacent to contig
		{Contig: 0, Ranges: []SeqRange{{1, 2}}},         // should be contig
		{Contig: 0, Ranges: []SeqRange{{5, 4}}},         // inverted
		{Contig: 0, Ranges: []SeqRange{{3, 5}, {6, 7}}}, // adjacent ranges
	} {
		if h.Check() == nil {
			t.Errorf("%v accepted", h)
		}
	}
}
