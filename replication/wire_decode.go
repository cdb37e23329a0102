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
