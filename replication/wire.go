package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Chunk body encoding (protocol version 2).
//
// A Chunk's Body is its writes, one after the other, with no count (the
// body's length ends it) and no padding. The encoding keeps every field of
// every crdt.Write exactly (values byte for byte) but says what the
// receiver can work out only once, or not at all:
//
//   - Origins go through a dictionary. It starts with the nodes both sides
//     know without being told, the chunk's sender then its receiver (the
//     session's two nodes); every other node id is sent once, inline as 8
//     bytes little-endian, and appended to it.
//   - A write's sequence number is usually one more than the previous
//     write of its origin in the chunk: a header bit says so.
//   - Stamps are deltas from the previous write's in the chunk (the first
//     from wireEpochMs): chunks go in HLC order, so they are tiny.
//   - Table names, record ids and field names go through three string
//     tables: inline the first time, by index after.
//   - A field's value is its canonical msgpack, which carries its own
//     length: no length prefix (except for elided writes, whose values are
//     absent).
//   - The causal context's entry for the write's own origin (the common,
//     often only, entry) is the distance below the write's own sequence.
//
// Per write:
//
//	header   1 byte:
//	           bit 0      delete
//	           bit 1      elided
//	           bits 2-3   origin: 0 the previous write's (the first write:
//	                      dictionary entry 0, the sender), 1 a dictionary
//	                      index follows (uvarint), 2 a new node id follows
//	                      (8 bytes LE, appended to the dictionary), 3 invalid
//	           bit 4      seq = the previous seq of this origin in the chunk
//	                      + 1 (the first write of an origin: seq = 1);
//	                      else a seq field follows
//	           bit 5      the usual field count (1 for a write, 0 for a
//	                      delete); else a count follows
//	           bits 6-7   context: 0 empty; 1 one entry, for the write's own
//	                      origin; 2 a general list follows; 3 invalid
//	[seq]    uvarint: the seq itself for an origin's first write in the
//	         chunk, else zigzag(seq - previous seq of the origin - 1)
//	stamp    uvarint x = zigzag(wall - previous wall) << 2 | l, wall being
//	         the stamp's 48-bit milliseconds (previous: wireEpochMs for
//	         the first write); then the 16-bit logical counter is
//	         lc = logical - previous logical if the wall did not change,
//	         else lc = logical; l = lc for lc in 0..2, l = 3: zigzag(lc)
//	         follows as a uvarint
//	table    string ref (table names' table)
//	id       string ref (record ids' table)
//	[count]  uvarint field count
//	fields   per field: name (string ref, field names' table); value:
//	         one canonical msgpack item (not elided), or uvarint length
//	         and bytes (elided: length 0 for an absent value)
//	context  code 1: uvarint seq - e - 1, e the entry for the write's own
//	         origin. Code 2: uvarint n, then n entries in node order:
//	         uvarint node ref k (0: the write's own origin; 1..d: the
//	         dictionary's entry k-1, d its current size; d+1: a new node,
//	         8 bytes LE, appended), then for the own origin uvarint
//	         seq - e - 1, for another node uvarint zigzag(e - m), m the
//	         last sequence number of that node the chunk mentioned (as a
//	         write's seq or in a context; 0 at first)
//
// A string ref is a uvarint v: v even, an inline string of v/2 bytes
// follows (and joins the table); v odd, the table's entry v/2.
//
// Decoding validates what it builds: bounds on every count and length
// (capped by the bytes that remain), each write's shape
// (crdt.Write.Validate), values (crdt.Value.Validate) and names
// (store.ValidTable, store.ValidID).

// wireEpochMs is the wall clock (Unix ms, November 2023) the first stamp of
// a chunk is a delta from: within ±8.7 years of it a stamp takes 6 bytes.
const wireEpochMs = 1_700_000_000_000

const (
	hdrDelete      = 1 << 0
	hdrElided      = 1 << 1
	hdrOriginShift = 2
	hdrOriginMask  = 3 << hdrOriginShift
	hdrSeqNext     = 1 << 4
	hdrUsualCount  = 1 << 5
	hdrCtxShift    = 6

	originPrev   = 0
	originRef    = 1
	originInline = 2

	ctxEmpty   = 0
	ctxOwnOnly = 1
	ctxList    = 2
)

// chunkEncoder builds a chunk body write by write, so that the sender can
// stop before the chunk limit.
type chunkEncoder struct {
	buf     []byte
	n       int // writes encoded
	dict    []hlc.NodeID
	dictIdx map[hlc.NodeID]int
	last    []uint64 // per dictionary entry: last write seq in the chunk
	mention []uint64 // per dictionary entry: last seq mentioned
	prevOri int      // dictionary index of the previous write's origin
	wall    int64
	logical int64
	tables  strEncTable
	ids     strEncTable
	names   strEncTable
}

type strEncTable struct {
	m map[string]uint32
}

// newChunkEncoder starts a chunk body whose dictionary begins with known
// (for a session: the sender's node id, then the receiver's).
func newChunkEncoder(known ...hlc.NodeID) *chunkEncoder {
	e := &chunkEncoder{dictIdx: make(map[hlc.NodeID]int, len(known)+4), wall: wireEpochMs}
	for _, n := range known {
		e.addOrigin(n)
	}
	return e
}

func (e *chunkEncoder) addOrigin(n hlc.NodeID) int {
	i := len(e.dict)
	e.dict = append(e.dict, n)
	e.last = append(e.last, 0)
	e.mention = append(e.mention, 0)
	if _, ok := e.dictIdx[n]; !ok {
		e.dictIdx[n] = i
	}
	return i
}

// Len returns the body's size so far.
func (e *chunkEncoder) Len() int { return len(e.buf) }

// Count returns the number of writes encoded.
func (e *chunkEncoder) Count() int { return e.n }

// Bytes returns the body.
func (e *chunkEncoder) Bytes() []byte { return e.buf }

// maxWireSize bounds the encoded size of w in a chunk body, whatever
// precedes it.
func maxWireSize(w *crdt.Write) int {
	n := 1 + 10 + 10 + 10 + 10 + len(w.Table) + 10 + len(w.ID) + 10 + 10 + 28*len(w.Ctx)
	for _, f := range w.Fields {
		n += 20 + len(f.Name) + len(f.Value)
	}
	return n
}

// Add appends w. w must pass crdt.Write.Validate; a value of a write that
// is not elided must be one msgpack item. On error the encoder must not be
// used further.
func (e *chunkEncoder) Add(w *crdt.Write) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("replication: encode: %w", err)
	}
	var hdr byte
	if w.Delete {
		hdr |= hdrDelete
	}
	if w.Elided {
		hdr |= hdrElided
	}
	hdrAt := len(e.buf)
	e.buf = append(e.buf, 0)

	// Origin.
	oi, known := e.dictIdx[w.Origin]
	switch {
	case known && oi == e.prevOri && e.n > 0, known && e.n == 0 && oi == 0:
		hdr |= originPrev << hdrOriginShift
	case known:
		hdr |= originRef << hdrOriginShift
		e.buf = binary.AppendUvarint(e.buf, uint64(oi))
	default:
		hdr |= originInline << hdrOriginShift
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(w.Origin))
		oi = e.addOrigin(w.Origin)
	}
	e.prevOri = oi

	// Sequence number.
	if last := e.last[oi]; w.Seq == last+1 {
		hdr |= hdrSeqNext
	} else if last == 0 {
		e.buf = binary.AppendUvarint(e.buf, w.Seq)
	} else {
		e.buf = binary.AppendUvarint(e.buf, zigzag(int64(w.Seq-last-1)))
	}
	e.last[oi] = w.Seq
	e.mention[oi] = w.Seq

	// Stamp.
	wall, logical := int64(w.TS>>16), int64(w.TS&0xffff)
	dw := wall - e.wall
	lc := logical
	if dw == 0 {
		lc = logical - e.logical
	}
	l := uint64(3)
	if lc >= 0 && lc <= 2 {
		l = uint64(lc)
	}
	e.buf = binary.AppendUvarint(e.buf, zigzag(dw)<<2|l)
	if l == 3 {
		e.buf = binary.AppendUvarint(e.buf, zigzag(lc))
	}
	e.wall, e.logical = wall, logical

	// Names.
	e.buf = e.tables.put(e.buf, w.Table)
	e.buf = e.ids.put(e.buf, w.ID)

	// Fields.
	usual := 1
	if w.Delete {
		usual = 0
	}
	if len(w.Fields) == usual {
		hdr |= hdrUsualCount
	} else {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(w.Fields)))
	}
	for _, f := range w.Fields {
		e.buf = e.names.put(e.buf, f.Name)
		if w.Elided {
			e.buf = binary.AppendUvarint(e.buf, uint64(len(f.Value)))
			e.buf = append(e.buf, f.Value...)
			continue
		}
		if n, ok := msgpackItemLen(f.Value); !ok || n != len(f.Value) {
			return fmt.Errorf("replication: encode write %s/%s: field %q: value is not one msgpack item", w.Table, w.ID, f.Name)
		}
		e.buf = append(e.buf, f.Value...)
	}

	// Causal context.
	switch {
	case len(w.Ctx) == 0:
		hdr |= ctxEmpty << hdrCtxShift
	case len(w.Ctx) == 1 && w.Ctx[0].Node == w.Origin:
		hdr |= ctxOwnOnly << hdrCtxShift
		e.buf = binary.AppendUvarint(e.buf, w.Seq-w.Ctx[0].Seq-1) // Validate: Ctx[0].Seq < Seq
	default:
		hdr |= ctxList << hdrCtxShift
		e.buf = binary.AppendUvarint(e.buf, uint64(len(w.Ctx)))
		for _, d := range w.Ctx {
			if d.Node == w.Origin {
				e.buf = append(e.buf, 0)
				e.buf = binary.AppendUvarint(e.buf, w.Seq-d.Seq-1)
				continue
			}
			di, ok := e.dictIdx[d.Node]
			if ok {
				e.buf = binary.AppendUvarint(e.buf, uint64(di)+1)
			} else {
				e.buf = binary.AppendUvarint(e.buf, uint64(len(e.dict))+1)
				e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(d.Node))
				di = e.addOrigin(d.Node)
			}
			e.buf = binary.AppendUvarint(e.buf, zigzag(int64(d.Seq-e.mention[di])))
			e.mention[di] = d.Seq
		}
	}
	e.buf[hdrAt] = hdr
	e.n++
	return nil
}

func (t *strEncTable) put(b []byte, s string) []byte {
	if i, ok := t.m[s]; ok {
		return binary.AppendUvarint(b, uint64(i)<<1|1)
	}
	if t.m == nil {
		t.m = make(map[string]uint32)
	}
	t.m[s] = uint32(len(t.m))
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

// encodeChunkWrites encodes ws as a chunk body whose dictionary starts with
// known.
func encodeChunkWrites(ws []*crdt.Write, known ...hlc.NodeID) ([]byte, error) {
	e := newChunkEncoder(known...)
	for _, w := range ws {
		if err := e.Add(w); err != nil {
			return nil, err
		}
	}
	return e.Bytes(), nil
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

var errWireShort = errors.New("truncated")

// wireDecoder reads a chunk body.
type wireDecoder struct {
	b       []byte
	vals    []byte // a private copy of b that decoded values point into
	off     int
	dict    []hlc.NodeID
	last    []uint64
	mention []uint64
	prevOri int
	wall    int64
	logical int64
	tables  []string
	ids     []string
	names   []string

	writes []crdt.Write // block the next writes are taken from
	fields []crdt.FieldValue
	ctxs   crdt.VV
}

func (d *wireDecoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, errWireShort
	}
	d.off += n
	return v, nil
}

func (d *wireDecoder) node() (hlc.NodeID, error) {
	if len(d.b)-d.off < 8 {
		return 0, errWireShort
	}
	n := hlc.NodeID(binary.LittleEndian.Uint64(d.b[d.off:]))
	d.off += 8
	if n == 0 {
		return 0, errors.New("node id 0")
	}
	return n, nil
}

func (d *wireDecoder) addOrigin(n hlc.NodeID) int {
	d.dict = append(d.dict, n)
	d.last = append(d.last, 0)
	d.mention = append(d.mention, 0)
	return len(d.dict) - 1
}

// str reads a string ref into table t; check validates an inline string.
func (d *wireDecoder) str(t *[]string, check func(string) bool) (string, error) {
	v, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if v&1 == 1 {
		i := v >> 1
		if i >= uint64(len(*t)) {
			return "", fmt.Errorf("string ref %d of %d", i, len(*t))
		}
		return (*t)[i], nil
	}
	n := v >> 1
	if n > uint64(len(d.b)-d.off) {
		return "", errWireShort
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	if check != nil && !check(s) {
		return "", fmt.Errorf("invalid name %q", s)
	}
	*t = append(*t, s)
	return s, nil
}

// take returns n elements from a block, allocating blocks as needed
// (growing from 16 to 1024 elements, so that a small chunk does not pay
// for a large block); a large n is not preallocated (a hostile count must
// not allocate more than the bytes behind it).
func takeFields(block *[]crdt.FieldValue, n int) []crdt.FieldValue {
	if n > 256 {
		return make([]crdt.FieldValue, 0, 256)
	}
	if cap(*block)-len(*block) < n {
		*block = make([]crdt.FieldValue, 0, blockCap(cap(*block), n))
	}
	l := len(*block)
	*block = (*block)[:l+n]
	return (*block)[l : l : l+n]
}

// blockCap is the size of the next block: double the last, 16 to 1024,
// and at least n.
func blockCap(last, n int) int {
	return max(n, min(1024, max(16, 2*last)))
}

func takeCtx(block *crdt.VV, n int) crdt.VV {
	if n > 256 {
		return make(crdt.VV, 0, 256)
	}
	if cap(*block)-len(*block) < n {
		*block = make(crdt.VV, 0, blockCap(cap(*block), n))
	}
	l := len(*block)
	*block = (*block)[:l+n]
	return (*block)[l : l : l+n]
}

// decodeChunkWrites decodes a chunk body encoded with the same known nodes
// and validates every write (shape, values, names). The writes do not
// reference b.
func decodeChunkWrites(b []byte, known ...hlc.NodeID) ([]*crdt.Write, error) {
	if len(b) == 0 {
		return nil, nil
	}
	d := &wireDecoder{b: b, wall: wireEpochMs}
	for _, n := range known {
		d.addOrigin(n)
	}
	var out []*crdt.Write
	for d.off < len(b) {
		start := d.off
		w, err := d.write()
		if err != nil {
			return nil, fmt.Errorf("replication: chunk write %d (byte %d): %w", len(out), start, err)
		}
		out = append(out, w)
	}
	return out, nil
}

func (d *wireDecoder) write() (*crdt.Write, error) {
	if len(d.writes) == cap(d.writes) {
		d.writes = make([]crdt.Write, 0, min(128, (len(d.b)-d.off)/4+1))
	}
	d.writes = d.writes[:len(d.writes)+1]
	w := &d.writes[len(d.writes)-1]

	hdr := d.b[d.off]
	d.off++
	w.Delete = hdr&hdrDelete != 0
	w.Elided = hdr&hdrElided != 0

	// Origin.
	var oi int
	switch (hdr & hdrOriginMask) >> hdrOriginShift {
	case originPrev:
		if len(d.dict) == 0 {
			return nil, errors.New("no origin")
		}
		oi = d.prevOri
	case originRef:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if v >= uint64(len(d.dict)) {
			return nil, fmt.Errorf("origin ref %d of %d", v, len(d.dict))
		}
		oi = int(v)
	case originInline:
		n, err := d.node()
		if err != nil {
			return nil, err
		}
		oi = d.addOrigin(n)
	default:
		return nil, errors.New("bad origin code")
	}
	d.prevOri = oi
	w.Origin = d.dict[oi]

	// Sequence number.
	last := d.last[oi]
	switch {
	case hdr&hdrSeqNext != 0:
		w.Seq = last + 1
	case last == 0:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		w.Seq = v
	default:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		w.Seq = last + 1 + uint64(unzigzag(v))
	}
	d.last[oi], d.mention[oi] = w.Seq, w.Seq

	// Stamp.
	x, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	dw := unzigzag(x >> 2)
	lc := int64(x & 3)
	if lc == 3 {
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		lc = unzigzag(v)
	}
	if (dw > 0 && d.wall > math.MaxInt64-dw) || (dw < 0 && d.wall < math.MinInt64-dw) {
		return nil, errors.New("stamp out of range")
	}
	wall := d.wall + dw
	logical := lc
	if dw == 0 {
		if (lc > 0 && d.logical > math.MaxInt64-lc) || (lc < 0 && d.logical < math.MinInt64-lc) {
			return nil, errors.New("stamp out of range")
		}
		logical = d.logical + lc
	}
	if wall < 0 || wall >= 1<<48 || logical < 0 || logical > 0xffff {
		return nil, errors.New("stamp out of range")
	}
	d.wall, d.logical = wall, logical
	w.TS = hlc.Timestamp(uint64(wall)<<16 | uint64(logical))

	// Names.
	if w.Table, err = d.str(&d.tables, store.ValidTable); err != nil {
		return nil, err
	}
	if w.ID, err = d.str(&d.ids, store.ValidID); err != nil {
		return nil, err
	}

	// Fields.
	nf := uint64(1)
	if w.Delete {
		nf = 0
	}
	if hdr&hdrUsualCount == 0 {
		if nf, err = d.uvarint(); err != nil {
			return nil, err
		}
		if nf > uint64(len(d.b)-d.off)/2 { // a field takes at least 2 bytes
			return nil, errWireShort
		}
	}
	if nf > 0 {
		w.Fields = takeFields(&d.fields, int(nf))
		for range nf {
			name, err := d.str(&d.names, nil)
			if err != nil {
				return nil, err
			}
			var v crdt.Value
			if w.Elided {
				n, err := d.uvarint()
				if err != nil {
					return nil, err
				}
				if n > uint64(len(d.b)-d.off) {
					return nil, errWireShort
				}
				if n > 0 {
					v = d.value(int(n))
				}
			} else {
				n, ok := msgpackItemLen(d.b[d.off:])
				if !ok {
					return nil, fmt.Errorf("field %q: malformed value", name)
				}
				v = d.value(n)
			}
			w.Fields = append(w.Fields, crdt.FieldValue{Name: name, Value: v})
		}
	}

	// Causal context.
	switch hdr >> hdrCtxShift {
	case ctxEmpty:
	case ctxOwnOnly:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if v >= w.Seq {
			return nil, errors.New("context entry below 1")
		}
		w.Ctx = takeCtx(&d.ctxs, 1)
		w.Ctx = append(w.Ctx, crdt.Dot{Node: w.Origin, Seq: w.Seq - v - 1})
	case ctxList:
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off)/2 { // an entry takes at least 2 bytes
			return nil, errWireShort
		}
		w.Ctx = takeCtx(&d.ctxs, int(n))
		for range n {
			k, err := d.uvarint()
			if err != nil {
				return nil, err
			}
			if k == 0 {
				v, err := d.uvarint()
				if err != nil {
					return nil, err
				}
				if v >= w.Seq {
					return nil, errors.New("context entry below 1")
				}
				w.Ctx = append(w.Ctx, crdt.Dot{Node: w.Origin, Seq: w.Seq - v - 1})
				continue
			}
			var di int
			switch {
			case k <= uint64(len(d.dict)):
				di = int(k - 1)
			case k == uint64(len(d.dict))+1:
				nd, err := d.node()
				if err != nil {
					return nil, err
				}
				di = d.addOrigin(nd)
			default:
				return nil, fmt.Errorf("context node ref %d of %d", k, len(d.dict))
			}
			v, err := d.uvarint()
			if err != nil {
				return nil, err
			}
			seq := d.mention[di] + uint64(unzigzag(v))
			d.mention[di] = seq
			w.Ctx = append(w.Ctx, crdt.Dot{Node: d.dict[di], Seq: seq})
		}
	default:
		return nil, errors.New("bad context code")
	}

	if err := w.Validate(); err != nil {
		return nil, err
	}
	if !w.Elided {
		for _, f := range w.Fields {
			if err := validValue(f.Value); err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
	}
	return w, nil
}

// validValue is crdt.Value.Validate with a fast path for the commonest
// values, which it accepts without decoding and re-encoding them: one-byte
// values (nil, booleans, fixints) and strings with the shortest header
// (crdt.ValueOf keeps strings as they are: any bytes are a valid string).
// TestValidValueFastPath checks that it accepts nothing Validate refuses.
func validValue(v crdt.Value) error {
	if len(v) == 0 {
		return v.Validate()
	}
	c, n := v[0], uint64(len(v))
	switch {
	case n == 1 && (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3):
		return nil
	case c >= 0xa0 && c <= 0xbf && n == 1+uint64(c&0x1f):
		return nil
	case c == 0xd9 && n >= 2 && uint64(v[1]) >= 32 && n == 2+uint64(v[1]):
		return nil
	case c == 0xda && n >= 3 && uint64(binary.BigEndian.Uint16(v[1:])) >= 256 && n == 3+uint64(binary.BigEndian.Uint16(v[1:])):
		return nil
	case c == 0xdb && n >= 5 && uint64(binary.BigEndian.Uint32(v[1:])) >= 1<<16 && n == 5+uint64(binary.BigEndian.Uint32(v[1:])):
		return nil
	}
	return v.Validate()
}

// value returns the next n bytes of the body as a value that does not
// reference the caller's buffer.
func (d *wireDecoder) value(n int) crdt.Value {
	if d.vals == nil {
		d.vals = append([]byte(nil), d.b...)
	}
	v := crdt.Value(d.vals[d.off : d.off+n : d.off+n])
	d.off += n
	return v
}

// msgpackItemLen returns the length of the msgpack item b starts with.
// It does not recurse: it counts the items still to skip, each at least one
// byte, so hostile input costs at most len(b) steps.
func msgpackItemLen(b []byte) (int, bool) {
	i := 0
	pending := uint64(1)
	for pending > 0 {
		if i >= len(b) {
			return 0, false
		}
		c := b[i]
		i++
		pending--
		var skip uint64
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f: // fixmap
			pending += 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			pending += uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				n, ok := beUint(b, i, 1)
				if !ok {
					return 0, false
				}
				i++
				skip = n
			case 0xc5, 0xda: // bin16, str16
				n, ok := beUint(b, i, 2)
				if !ok {
					return 0, false
				}
				i += 2
				skip = n
			case 0xc6, 0xdb: // bin32, str32
				n, ok := beUint(b, i, 4)
				if !ok {
					return 0, false
				}
				i += 4
				skip = n
			case 0xc7: // ext8
				n, ok := beUint(b, i, 1)
				if !ok {
					return 0, false
				}
				i++
				skip = n + 1
			case 0xc8: // ext16
				n, ok := beUint(b, i, 2)
				if !ok {
					return 0, false
				}
				i += 2
				skip = n + 1
			case 0xc9: // ext32
				n, ok := beUint(b, i, 4)
				if !ok {
					return 0, false
				}
				i += 4
				skip = n + 1
			case 0xcc, 0xd0:
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2:
				skip = 4
			case 0xcb, 0xcf, 0xd3:
				skip = 8
			case 0xd4:
				skip = 2
			case 0xd5:
				skip = 3
			case 0xd6:
				skip = 5
			case 0xd7:
				skip = 9
			case 0xd8:
				skip = 17
			case 0xdc: // array16
				n, ok := beUint(b, i, 2)
				if !ok {
					return 0, false
				}
				i += 2
				pending += n
			case 0xdd: // array32
				n, ok := beUint(b, i, 4)
				if !ok {
					return 0, false
				}
				i += 4
				pending += n
			case 0xde: // map16
				n, ok := beUint(b, i, 2)
				if !ok {
					return 0, false
				}
				i += 2
				pending += 2 * n
			case 0xdf: // map32
				n, ok := beUint(b, i, 4)
				if !ok {
					return 0, false
				}
				i += 4
				pending += 2 * n
			default: // 0xc1: never used
				return 0, false
			}
		}
		if skip > uint64(len(b)-i) {
			return 0, false
		}
		i += int(skip)
	}
	return i, true
}

func beUint(b []byte, i, n int) (uint64, bool) {
	if len(b)-i < n {
		return 0, false
	}
	var v uint64
	for _, c := range b[i : i+n] {
		v = v<<8 | uint64(c)
	}
	return v, true
}
