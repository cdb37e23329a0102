package replication

import (
	"encoding/binary"
	"fmt"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
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
