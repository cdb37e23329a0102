package crdt

import (
	"fmt"
	"sync"

	"github.com/ugorji/go/codec"
)

type wireFieldValue struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Name    string
	Value   []byte
}

type wireWrite struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Table   string
	ID      string
	Origin  uint64
	Seq     uint64
	TS      uint64
	Ctx     []wireDot
	Delete  bool
	Elided  bool
	Fields  []wireFieldValue
}

type writeCodec struct {
	enc *codec.Encoder
	dec *codec.Decoder
	buf []byte
	w   wireWrite
}

var writePool = sync.Pool{New: func() any {
	c := &writeCodec{}
	c.enc = codec.NewEncoderBytes(&c.buf, StoreHandle)
	c.dec = codec.NewDecoderBytes(nil, StoreHandle)
	return c
}}

// AppendWrite appends the msgpack encoding of w to b. The store's change log
// and the sync protocol's frames use it.
func AppendWrite(b []byte, w *Write) ([]byte, error) { return appendWriteFast(b, w), nil }

// appendWriteCodec is AppendWrite through the codec, kept to check the
// hand-written encoder against.
func appendWriteCodec(b []byte, w *Write) ([]byte, error) {
	c := writePool.Get().(*writeCodec)
	defer writePool.Put(c)
	ww := &c.w
	ww.Table, ww.ID = w.Table, w.ID
	ww.Origin, ww.Seq, ww.TS = uint64(w.Origin), w.Seq, uint64(w.TS)
	ww.Ctx = toWireVV(ww.Ctx, w.Ctx)
	ww.Delete, ww.Elided = w.Delete, w.Elided
	ww.Fields = ww.Fields[:0]
	for _, f := range w.Fields {
		ww.Fields = append(ww.Fields, wireFieldValue{Name: f.Name, Value: f.Value})
	}
	c.buf = b
	c.enc.ResetBytes(&c.buf)
	err := c.enc.Encode(ww)
	out := c.buf
	c.buf = nil
	for i := range ww.Fields {
		ww.Fields[i] = wireFieldValue{}
	}
	if err != nil {
		return b, fmt.Errorf("encode write: %w", err)
	}
	return out, nil
}

// DecodeWrite decodes a write encoded by AppendWrite and validates its shape
// ([Write.Validate]); with checkValues it also checks every value's
// encoding ([Value.Validate]), as a receiver of network input must. The
// result does not reference data.
func DecodeWrite(data []byte, checkValues bool) (*Write, error) {
	w, ok := decodeWriteFast(data)
	if !ok {
		var err error
		if w, err = decodeWriteCodec(data); err != nil {
			return nil, err
		}
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if checkValues && !w.Elided {
		for _, f := range w.Fields {
			if err := f.Value.Validate(); err != nil {
				return nil, fmt.Errorf("write %s/%s field %q: %w", w.Table, w.ID, f.Name, err)
			}
		}
	}
	return w, nil
}

// decodeWriteCodec decodes a write through the codec (any msgpack form the
// codec reads), without validating it.
func decodeWriteCodec(data []byte) (*Write, error) {
	c := writePool.Get().(*writeCodec)
	defer writePool.Put(c)
	c.w = wireWrite{}
	c.dec.ResetBytes(data)
	if err := c.dec.Decode(&c.w); err != nil {
		return nil, fmt.Errorf("decode write: %w", err)
	}
	ww := &c.w
	w := &Write{
		Table: ww.Table, ID: ww.ID,
		Origin: nodeID(ww.Origin), Seq: ww.Seq, TS: ts(ww.TS),
		Ctx:    fromWireVV(ww.Ctx),
		Delete: ww.Delete, Elided: ww.Elided,
	}
	if len(ww.Fields) > 0 {
		w.Fields = make([]FieldValue, len(ww.Fields))
		for i, f := range ww.Fields {
			var v Value
			if len(f.Value) > 0 {
				v = Value(append([]byte(nil), f.Value...))
			}
			w.Fields[i] = FieldValue{Name: f.Name, Value: v}
		}
	}
	c.w = wireWrite{}
	return w, nil
}

// Elide returns a copy of w without its values (see [Write.Elided]).
func (w *Write) Elide() *Write {
	c := *w
	c.Elided = true
	c.Fields = make([]FieldValue, len(w.Fields))
	for i, f := range w.Fields {
		c.Fields[i] = FieldValue{Name: f.Name}
	}
	return &c
}
