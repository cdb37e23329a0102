package crdt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	"github.com/ugorji/go/codec"
)

// Encoding of records for the store: msgpack (ugorji/go/codec), structs as
// arrays. The layout is versioned by the store's format version; change it
// only with a migration.

type wireDot struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Node    uint64
	Seq     uint64
}

type wireEntry struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Origin  uint64
	Seq     uint64
	TS      uint64
	Delete  bool
	Value   []byte
}

type wireField struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Name    string
	Cands   []wireEntry
	Cov     []wireDot
}

type wireRecord struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Applied []wireDot
	Exist   []wireEntry
	ExCov   []wireDot
	Dels    []wireEntry
	DelCov  []wireDot
	Fields  []wireField
}

// StoreHandle is the msgpack configuration for records; configured once.
var StoreHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.RawToString = true
	return h
}()

type recCodec struct {
	enc *codec.Encoder
	dec *codec.Decoder
	buf []byte
	w   wireRecord
}

var recPool = sync.Pool{New: func() any {
	c := &recCodec{}
	c.enc = codec.NewEncoderBytes(&c.buf, StoreHandle)
	c.dec = codec.NewDecoderBytes(nil, StoreHandle)
	return c
}}

func toWireVV(dst []wireDot, v VV) []wireDot {
	dst = dst[:0]
	for _, d := range v {
		dst = append(dst, wireDot{Node: uint64(d.Node), Seq: d.Seq})
	}
	return dst
}

func toWireEntries(dst []wireEntry, es []Entry) []wireEntry {
	dst = dst[:0]
	for _, e := range es {
		dst = append(dst, wireEntry{Origin: uint64(e.Origin), Seq: e.Seq, TS: uint64(e.TS), Delete: e.Delete, Value: e.Value})
	}
	return dst
}

// AppendBinary appends r's encoding to b.
func (r *Record) AppendBinary(b []byte) ([]byte, error) { return appendRecordFast(b, r), nil }

// appendBinaryCodec is AppendBinary through the codec (reflection), kept
// to check the hand-written encoder against.
func (r *Record) appendBinaryCodec(b []byte) ([]byte, error) {
	c := recPool.Get().(*recCodec)
	defer recPool.Put(c)
	w := &c.w
	w.Applied = toWireVV(w.Applied, r.Applied)
	w.Exist = toWireEntries(w.Exist, r.Exist)
	w.ExCov = toWireVV(w.ExCov, r.ExCov)
	w.Dels = toWireEntries(w.Dels, r.Dels)
	w.DelCov = toWireVV(w.DelCov, r.DelCov)
	if cap(w.Fields) < len(r.Fields) {
		w.Fields = make([]wireField, len(r.Fields))
	}
	w.Fields = w.Fields[:len(r.Fields)]
	for i := range r.Fields {
		f := &r.Fields[i]
		w.Fields[i].Name = f.Name
		w.Fields[i].Cands = toWireEntries(w.Fields[i].Cands, f.Cands)
		w.Fields[i].Cov = toWireVV(w.Fields[i].Cov, f.Cov)
	}
	c.buf = b
	c.enc.ResetBytes(&c.buf)
	err := c.enc.Encode(w)
	out := c.buf
	c.buf = nil
	// Drop references to values so the pool does not pin them.
	clearEntries(w.Exist)
	clearEntries(w.Dels)
	for i := range w.Fields {
		clearEntries(w.Fields[i].Cands)
	}
	if err != nil {
		return b, fmt.Errorf("encode record: %w", err)
	}
	return out, nil
}

func clearEntries(es []wireEntry) {
	for i := range es {
		es[i].Value = nil
	}
}

// MarshalBinary returns r's encoding.
func (r *Record) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// UnmarshalBinary decodes data into r, replacing its contents, and checks
// the result's invariants. r does not keep references to data.
func (r *Record) UnmarshalBinary(data []byte) error {
	c := recPool.Get().(*recCodec)
	defer recPool.Put(c)
	c.w = wireRecord{}
	c.dec.ResetBytes(data)
	if err := c.dec.Decode(&c.w); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	w := &c.w
	*r = Record{
		Applied: fromWireVV(w.Applied),
		Exist:   fromWireEntries(w.Exist),
		ExCov:   fromWireVV(w.ExCov),
		Dels:    fromWireEntries(w.Dels),
		DelCov:  fromWireVV(w.DelCov),
	}
	if len(w.Fields) > 0 {
		r.Fields = make([]Field, len(w.Fields))
		for i, f := range w.Fields {
			r.Fields[i] = Field{Name: f.Name, Cands: fromWireEntries(f.Cands), Cov: fromWireVV(f.Cov)}
		}
	}
	c.w = wireRecord{}
	for i := range r.Fields {
		if len(r.Fields[i].Cov) > 0 {
			r.covFields++
		}
	}
	if msg := r.Check(); msg != "" {
		return fmt.Errorf("decode record: %s", msg)
	}
	return nil
}

func fromWireVV(ws []wireDot) VV {
	if len(ws) == 0 {
		return nil
	}
	v := make(VV, len(ws))
	for i, d := range ws {
		v[i] = Dot{Node: nodeID(d.Node), Seq: d.Seq}
	}
	return v
}

func fromWireEntries(ws []wireEntry) []Entry {
	if len(ws) == 0 {
		return nil
	}
	es := make([]Entry, len(ws))
	for i, e := range ws {
		var v Value
		if len(e.Value) > 0 {
			v = Value(append([]byte(nil), e.Value...))
		}
		es[i] = Entry{Origin: nodeID(e.Origin), Seq: e.Seq, TS: ts(e.TS), Delete: e.Delete, Value: v}
	}
	return es
}

// Digest returns a SHA-256 digest of r's canonical form. Two replicas that
// applied the same writes have equal digests.
func (r *Record) Digest() [32]byte {
	h := sha256.New()
	r.WriteDigest(h)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// AppendEntriesDigest appends es's canonical form to buf (their count,
// then each entry's origin, seq, stamp, delete flag and value), as
// WriteDigest writes a record's candidates.
func AppendEntriesDigest(buf []byte, es []Entry) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(es)))
	for _, e := range es {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.Origin))
		buf = binary.AppendUvarint(buf, e.Seq)
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.TS))
		if e.Delete {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		buf = binary.AppendUvarint(buf, uint64(len(e.Value)))
		buf = append(buf, e.Value...)
	}
	return buf
}

// WriteDigest writes r's canonical form to h, for digests over many records.
// The form does not depend on how r's slices were allocated.
func (r *Record) WriteDigest(h hash.Hash) {
	var buf []byte
	vv := func(v VV) {
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		for _, d := range v {
			buf = binary.BigEndian.AppendUint64(buf, uint64(d.Node))
			buf = binary.AppendUvarint(buf, d.Seq)
		}
	}
	entries := func(es []Entry) { buf = AppendEntriesDigest(buf, es) }
	vv(r.Applied)
	entries(r.Exist)
	vv(r.ExCov)
	entries(r.Dels)
	vv(r.DelCov)
	buf = binary.AppendUvarint(buf, uint64(len(r.Fields)))
	for i := range r.Fields {
		f := &r.Fields[i]
		buf = binary.AppendUvarint(buf, uint64(len(f.Name)))
		buf = append(buf, f.Name...)
		entries(f.Cands)
		vv(f.Cov)
		if len(buf) > 4096 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
}
