package store

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SeqRange is an inclusive range of sequence numbers [Lo, Hi], Lo >= 1.
type SeqRange struct {
	Lo, Hi uint64
}

func (r SeqRange) String() string {
	if r.Lo == r.Hi {
		return strconv.FormatUint(r.Lo, 10)
	}
	return strconv.FormatUint(r.Lo, 10) + "-" + strconv.FormatUint(r.Hi, 10)
}

// Held is the set of one origin's sequence numbers a replica holds: every
// sequence in 1..Contig, plus the sorted, disjoint, non-adjacent Ranges
// above Contig+1. The holes between are the gaps ([Held.Gaps]). The zero
// Held holds nothing. Held is a value type; methods that change it take a
// pointer and may reuse its Ranges array, so copy with [Held.Clone] before
// sharing.
type Held struct {
	Contig uint64
	Ranges []SeqRange
}

// Add marks [lo, hi] as held. lo 0 is treated as 1; an empty range (hi <
// lo) changes nothing.
func (h *Held) Add(lo, hi uint64) {
	if lo == 0 {
		lo = 1
	}
	if hi < lo || hi <= h.Contig {
		return
	}
	if lo <= h.Contig+1 {
		h.Contig = hi
		h.absorb()
		return
	}
	rs := h.Ranges
	// First range that ends at or after lo-1 (may touch or overlap).
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Hi+1 >= lo })
	j := i
	nlo, nhi := lo, hi
	for j < len(rs) && rs[j].Lo <= hi+1 {
		nlo = min(nlo, rs[j].Lo)
		nhi = max(nhi, rs[j].Hi)
		j++
	}
	// Replace rs[i:j] by the merged range.
	if i == j {
		rs = append(rs, SeqRange{})
		copy(rs[i+1:], rs[i:])
	} else {
		rs = append(rs[:i+1], rs[j:]...)
	}
	rs[i] = SeqRange{nlo, nhi}
	h.Ranges = rs
}

// absorb moves ranges that now touch Contig into it.
func (h *Held) absorb() {
	n := 0
	for n < len(h.Ranges) && h.Ranges[n].Lo <= h.Contig+1 {
		h.Contig = max(h.Contig, h.Ranges[n].Hi)
		n++
	}
	if n > 0 {
		h.Ranges = append(h.Ranges[:0], h.Ranges[n:]...)
	}
	if len(h.Ranges) == 0 {
		h.Ranges = nil
	}
}

// Contains reports whether seq is held.
func (h Held) Contains(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq <= h.Contig {
		return true
	}
	i := sort.Search(len(h.Ranges), func(i int) bool { return h.Ranges[i].Hi >= seq })
	return i < len(h.Ranges) && h.Ranges[i].Lo <= seq
}

// Max returns the highest held sequence (0 if none).
func (h Held) Max() uint64 {
	if n := len(h.Ranges); n > 0 {
		return h.Ranges[n-1].Hi
	}
	return h.Contig
}

// Gaps returns the missing ranges below Max, in order. The result is new.
func (h Held) Gaps() []SeqRange {
	var out []SeqRange
	prev := h.Contig
	for _, r := range h.Ranges {
		out = append(out, SeqRange{prev + 1, r.Lo - 1})
		prev = r.Hi
	}
	return out
}

// Missing returns the ranges o holds that h does not, in order: what a
// replica holding h must ask of one holding o. The result is new.
func (h Held) Missing(o Held) []SeqRange {
	var out []SeqRange
	add := func(lo, hi uint64) {
		// subtract h from [lo,hi]
		for lo <= hi {
			if h.Contains(lo) {
				// skip to end of h's run containing lo
				if lo <= h.Contig {
					lo = h.Contig + 1
					continue
				}
				i := sort.Search(len(h.Ranges), func(i int) bool { return h.Ranges[i].Hi >= lo })
				lo = h.Ranges[i].Hi + 1
				if lo == 0 { // overflow
					return
				}
				continue
			}
			// lo is missing; find where h resumes
			end := hi
			i := sort.Search(len(h.Ranges), func(i int) bool { return h.Ranges[i].Hi >= lo })
			if i < len(h.Ranges) && h.Ranges[i].Lo-1 < end {
				end = h.Ranges[i].Lo - 1
			}
			out = append(out, SeqRange{lo, end})
			if end == hi {
				return
			}
			lo = end + 1
		}
	}
	if o.Contig > 0 {
		add(1, o.Contig)
	}
	for _, r := range o.Ranges {
		add(r.Lo, r.Hi)
	}
	return out
}

// Clone returns a copy sharing no memory with h.
func (h Held) Clone() Held {
	c := Held{Contig: h.Contig}
	if len(h.Ranges) > 0 {
		c.Ranges = append([]SeqRange(nil), h.Ranges...)
	}
	return c
}

// Equal reports whether h and o hold the same sequences.
func (h Held) Equal(o Held) bool {
	if h.Contig != o.Contig || len(h.Ranges) != len(o.Ranges) {
		return false
	}
	for i := range h.Ranges {
		if h.Ranges[i] != o.Ranges[i] {
			return false
		}
	}
	return true
}

// Check returns an error if h is not in canonical form (decoded values
// must be checked).
func (h Held) Check() error {
	prev := h.Contig
	for _, r := range h.Ranges {
		if r.Lo > r.Hi || r.Lo <= prev+1 {
			return fmt.Errorf("held ranges not canonical at %v (after %d)", r, prev)
		}
		prev = r.Hi
	}
	return nil
}

func (h Held) String() string {
	var b strings.Builder
	b.WriteString("1-" + strconv.FormatUint(h.Contig, 10))
	for _, r := range h.Ranges {
		b.WriteString("," + r.String())
	}
	return b.String()
}

// encode/decode as a flat list: contig, lo1, hi1, ...
func (h Held) flat() []uint64 {
	out := make([]uint64, 0, 1+2*len(h.Ranges))
	out = append(out, h.Contig)
	for _, r := range h.Ranges {
		out = append(out, r.Lo, r.Hi)
	}
	return out
}

func heldFromFlat(f []uint64) (Held, error) {
	if len(f) == 0 || len(f)%2 != 1 {
		return Held{}, fmt.Errorf("held: %d numbers, want an odd count", len(f))
	}
	h := Held{Contig: f[0]}
	for i := 1; i < len(f); i += 2 {
		h.Ranges = append(h.Ranges, SeqRange{f[i], f[i+1]})
	}
	return h, h.Check()
}
