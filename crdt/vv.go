package crdt

import (
	"sort"
	"strings"

	"github.com/replicad/replicad/hlc"
)

// Dot names one write: its origin node and that origin's sequence number.
// Sequence numbers of one origin start at 1 and increase by one per write.
type Dot struct {
	Node hlc.NodeID
	Seq  uint64
}

// VV is a version vector over the writes to one record: for each origin, the
// highest sequence number of that origin's writes to the record it covers.
// Because an origin's writes to a record are applied in the order they were
// made (the precondition of [Record.Apply]), covering sequence s of origin o
// means covering every write of o to the record numbered s or less.
//
// A VV is kept sorted by node, without zero entries. The zero VV is empty and
// ready to use. Methods that change a VV reuse its backing array where they
// can.
type VV []Dot

// Get returns the entry for node n (0 if absent).
func (v VV) Get(n hlc.NodeID) uint64 {
	// Linear for the common tiny vectors, binary search otherwise.
	if len(v) <= 8 {
		for _, d := range v {
			if d.Node == n {
				return d.Seq
			}
			if d.Node > n {
				return 0
			}
		}
		return 0
	}
	i := sort.Search(len(v), func(i int) bool { return v[i].Node >= n })
	if i < len(v) && v[i].Node == n {
		return v[i].Seq
	}
	return 0
}

// Covers reports whether v covers the write d.
func (v VV) Covers(d Dot) bool { return d.Seq != 0 && v.Get(d.Node) >= d.Seq }

// Set raises the entry for d.Node to d.Seq; it never lowers an entry.
func (v *VV) Set(d Dot) {
	if d.Seq == 0 {
		return
	}
	s := *v
	i := 0
	for i < len(s) && s[i].Node < d.Node {
		i++
	}
	if i < len(s) && s[i].Node == d.Node {
		if s[i].Seq < d.Seq {
			s[i].Seq = d.Seq
		}
		return
	}
	s = append(s, Dot{})
	copy(s[i+1:], s[i:])
	s[i] = d
	*v = s
}

// Join raises v to cover everything o covers (pointwise maximum).
func (v *VV) Join(o VV) {
	if len(o) == 0 {
		return
	}
	s := *v
	if len(s) == 0 {
		*v = append(s[:0], o...)
		return
	}
	// Fast path: same nodes in the same order.
	if len(s) == len(o) {
		same := true
		for i := range s {
			if s[i].Node != o[i].Node {
				same = false
				break
			}
		}
		if same {
			for i := range s {
				if o[i].Seq > s[i].Seq {
					s[i].Seq = o[i].Seq
				}
			}
			return
		}
	}
	for _, d := range o {
		v.Set(d)
	}
}

// joinAbove joins into v the entries of ctx above applied: the part of a
// cover that can still decide anything (see [Record]).
func (v *VV) joinAbove(ctx, applied VV) {
	for _, d := range ctx {
		if d.Seq > applied.Get(d.Node) {
			v.Set(d)
		}
	}
}

// aboveAny reports whether v has an entry above applied.
func (v VV) aboveAny(applied VV) bool {
	for _, d := range v {
		if d.Seq > applied.Get(d.Node) {
			return true
		}
	}
	return false
}

// PruneCovered removes the entries of v that applied covers. See
// [Record] for why covers are kept only above what was applied.
func (v *VV) PruneCovered(applied VV) {
	s := *v
	n := 0
	for _, d := range s {
		if applied.Get(d.Node) < d.Seq {
			s[n] = d
			n++
		}
	}
	*v = s[:n]
}

// Clone returns a copy of v that shares no memory with it.
func (v VV) Clone() VV {
	if len(v) == 0 {
		return nil
	}
	return append(VV(nil), v...)
}

// Equal reports whether v and o are the same vector.
func (v VV) Equal(o VV) bool {
	if len(v) != len(o) {
		return false
	}
	for i := range v {
		if v[i] != o[i] {
			return false
		}
	}
	return true
}

// LessEq reports whether o covers everything v covers.
func (v VV) LessEq(o VV) bool {
	for _, d := range v {
		if o.Get(d.Node) < d.Seq {
			return false
		}
	}
	return true
}

// Valid reports whether v is sorted by node with no duplicate or zero
// entries; decoded vectors from the outside must be checked.
func (v VV) Valid() bool {
	for i, d := range v {
		if d.Seq == 0 || d.Node == 0 {
			return false
		}
		if i > 0 && v[i-1].Node >= d.Node {
			return false
		}
	}
	return true
}

// String formats v as "{node:seq node:seq}".
func (v VV) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, d := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(d.String())
	}
	b.WriteByte('}')
	return b.String()
}

// String formats d as "node:seq".
func (d Dot) String() string {
	return d.Node.String() + ":" + uitoa(d.Seq)
}

func uitoa(u uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return string(b[i:])
}
