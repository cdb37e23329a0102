package store

import (
	"fmt"
	"github.com/replicad/replicad/internal/msgp"
	"sync"

	"github.com/ugorji/go/codec"
)

// bookHandle is the msgpack configuration for the store's own values
// (holdings, feed entries, bookkeeping). Configured once, never changed.
// Structs are encoded as maps by field name so fields can be added later;
// Canonical so equal values encode equally.
var bookHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.Canonical = true
	h.RawToString = true
	return h
}()

type bookCodec struct {
	enc *codec.Encoder
	dec *codec.Decoder
	buf []byte
}

var bookPool = sync.Pool{New: func() any {
	c := &bookCodec{}
	c.enc = codec.NewEncoderBytes(&c.buf, bookHandle)
	c.dec = codec.NewDecoderBytes(nil, bookHandle)
	return c
}}

// encodeValue appends the msgpack encoding of v to dst.
func encodeValue(dst []byte, v any) ([]byte, error) {
	c := bookPool.Get().(*bookCodec)
	defer bookPool.Put(c)
	c.buf = dst
	c.enc.ResetBytes(&c.buf)
	err := c.enc.Encode(v)
	out := c.buf
	c.buf = nil
	if err != nil {
		return dst, fmt.Errorf("store: encode %T: %w", v, err)
	}
	return out, nil
}

// decodeValue decodes data into v (a pointer to a zero value: decoding into
// a reused struct would keep stale fields). Errors are reported as corrupt
// at key. Decoding never panics (the codec recovers internally; we add a
// guard anyway).
func decodeValue(key, data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corruptf(key, "decode panic: %v", r)
		}
	}()
	c := bookPool.Get().(*bookCodec)
	defer bookPool.Put(c)
	c.dec.ResetBytes(data)
	if err := c.dec.Decode(v); err != nil {
		return corrupt(key, err)
	}
	if c.dec.NumBytesRead() != len(data) {
		return corruptf(key, "%d trailing bytes", len(data)-c.dec.NumBytesRead())
	}
	return nil
}

// appendFeedValue appends the msgpack encoding of a feed entry, the same
// bytes the codec writes for feedValue (an array of origin, seq, table,
// id), without reflection: it is written once per applied write.
func appendFeedValue(b []byte, origin, seq uint64, table, id string) []byte {
	b = append(b, 0x94)
	b = msgp.Uint(b, origin)
	b = msgp.Uint(b, seq)
	b = msgp.Str(b, table)
	return msgp.Str(b, id)
}
