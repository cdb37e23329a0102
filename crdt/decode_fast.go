package crdt

import (
	"encoding/binary"
	"strings"
)

// Hand-written decoding of writes in the layout appendWriteFast produces
// (the codec's layout for wireWrite), without reflection: the store
// decodes every change-log entry it streams to a peer, so a hub serving a
// fleet decodes each write once per device. Anything outside that layout
// (another msgpack form of a value, trailing bytes) is left to the codec:
// decodeWriteFast then reports false and DecodeWrite falls back, so both
// paths accept exactly what the codec accepts for canonical input.
// TestDecodeWriteFast checks the two agree.

type fastReader struct {
	b   []byte
	bad bool
}

func (r *fastReader) byte1() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fastReader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *fastReader) uint() uint64 {
	c := r.byte1()
	switch {
	case c < 0x80:
		return uint64(c)
	case c == 0xcc:
		return uint64(r.byte1())
	case c == 0xcd:
		if s := r.take(2); s != nil {
			return uint64(binary.BigEndian.Uint16(s))
		}
	case c == 0xce:
		if s := r.take(4); s != nil {
			return uint64(binary.BigEndian.Uint32(s))
		}
	case c == 0xcf:
		if s := r.take(8); s != nil {
			return binary.BigEndian.Uint64(s)
		}
	}
	r.bad = true
	return 0
}

func (r *fastReader) length(fix, fixMask byte, b8, b16, b32 byte) int {
	c := r.byte1()
	switch {
	case fixMask != 0 && c&^fixMask == fix:
		return int(c & fixMask)
	case b8 != 0 && c == b8:
		return int(r.byte1())
	case c == b16:
		if s := r.take(2); s != nil {
			return int(binary.BigEndian.Uint16(s))
		}
	case c == b32:
		if s := r.take(4); s != nil {
			return int(binary.BigEndian.Uint32(s))
		}
	}
	r.bad = true
	return 0
}

// array reads an array header; msgpack nil (the codec's encoding of an
// empty slice) is an empty array, as the codec decodes it.
func (r *fastReader) array() int {
	if len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return 0
	}
	return r.length(0x90, 0x0f, 0, 0xdc, 0xdd)
}

func (r *fastReader) bool() bool {
	switch r.byte1() {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.bad = true
	return false
}

// bin returns a bin's bytes (aliasing the input), or nil for msgpack nil.
func (r *fastReader) bin() []byte {
	if len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return nil
	}
	c := r.byte1()
	var n int
	switch c {
	case 0xc4:
		n = int(r.byte1())
	case 0xc5:
		if s := r.take(2); s != nil {
			n = int(binary.BigEndian.Uint16(s))
		}
	case 0xc6:
		if s := r.take(4); s != nil {
			n = int(binary.BigEndian.Uint32(s))
		}
	default:
		r.bad = true
		return nil
	}
	return r.take(n)
}

// writeAlloc holds a write with one field and a context of one dot, the
// common case, in one allocation.
type writeAlloc struct {
	w Write
	f [1]FieldValue
	d [1]Dot
}

// decodeWriteFast decodes data into a new write, or reports false if
// data is not in appendWriteFast's layout. The write does not reference
// data: its strings share one allocation, its values another.
func decodeWriteFast(data []byte) (*Write, bool) {
	r := fastReader{b: data}
	if r.byte1() != 0x99 {
		return nil, false
	}
	strLen := 0
	rawStr := func() []byte {
		s := r.take(r.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb))
		strLen += len(s)
		return s
	}
	table, id := rawStr(), rawStr()
	origin, seq, stamp := r.uint(), r.uint(), r.uint()
	nctx := r.array()
	if r.bad || nctx > len(r.b)/3 {
		return nil, false
	}
	ctxAt := r.b
	for range nctx {
		if r.byte1() != 0x92 {
			return nil, false
		}
		r.uint()
		r.uint()
	}
	del, elided := r.bool(), r.bool()
	nf := r.array()
	if r.bad || nf > len(r.b)/3 {
		return nil, false
	}
	fieldsAt := r.b
	valLen := 0
	for range nf {
		if r.byte1() != 0x92 {
			return nil, false
		}
		rawStr()
		valLen += len(r.bin())
	}
	if r.bad || len(r.b) != 0 {
		return nil, false
	}
	// The layout is right: build the write.
	var w *Write
	if nctx <= 1 && nf <= 1 {
		a := &writeAlloc{}
		w = &a.w
		if nctx == 1 {
			w.Ctx = a.d[:1:1]
		}
		if nf == 1 {
			w.Fields = a.f[:1:1]
		}
	} else {
		w = &Write{}
		if nctx > 0 {
			w.Ctx = make(VV, nctx)
		}
		if nf > 0 {
			w.Fields = make([]FieldValue, nf)
		}
	}
	var sb strings.Builder
	sb.Grow(strLen)
	sb.Write(table)
	sb.Write(id)
	var vals []byte
	if valLen > 0 {
		vals = make([]byte, 0, valLen)
	}
	r = fastReader{b: ctxAt}
	for i := range w.Ctx {
		r.byte1()
		w.Ctx[i] = Dot{Node: nodeID(r.uint()), Seq: r.uint()}
	}
	r = fastReader{b: fieldsAt}
	type span struct{ lo, hi int }
	names := make([]span, 0, 8)
	for i := range w.Fields {
		r.byte1()
		n := r.take(r.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb))
		names = append(names, span{sb.Len(), sb.Len() + len(n)})
		sb.Write(n)
		if v := r.bin(); len(v) > 0 {
			vals = append(vals, v...)
			w.Fields[i].Value = Value(vals[len(vals)-len(v) : len(vals) : len(vals)])
		}
	}
	all := sb.String()
	w.Table, w.ID = all[:len(table)], all[len(table):len(table)+len(id)]
	for i, s := range names {
		w.Fields[i].Name = all[s.lo:s.hi]
	}
	w.Origin, w.Seq, w.TS = nodeID(origin), seq, ts(stamp)
	w.Delete, w.Elided = del, elided
	return w, true
}

// WriteTable returns the table name of an encoded write (aliasing data)
// without decoding the rest, or false if data is not in the canonical
// layout (decode it whole then).
func WriteTable(data []byte) ([]byte, bool) {
	r := fastReader{b: data}
	if r.byte1() != 0x99 {
		return nil, false
	}
	t := r.take(r.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb))
	return t, !r.bad
}
