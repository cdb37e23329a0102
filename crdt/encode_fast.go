package crdt

import "github.com/replicad/replicad/internal/msgp"

// Hand-written msgpack encoding of records, in the layout the codec reads
// for wireRecord (StoreHandle: structs as arrays, byte slices as bin; empty
// lists as empty arrays), without reflection: records are encoded once per
// write on the store's hot path. Decoding stays with the codec;
// TestFastEncodingRoundTrip checks the two agree.

func appendVV(b []byte, v VV) []byte {
	b = msgp.ArrayHeader(b, len(v))
	for _, d := range v {
		b = append(b, 0x92)
		b = msgp.Uint(b, uint64(d.Node))
		b = msgp.Uint(b, d.Seq)
	}
	return b
}

func appendEntries(b []byte, es []Entry) []byte {
	b = msgp.ArrayHeader(b, len(es))
	for i := range es {
		e := &es[i]
		b = append(b, 0x95)
		b = msgp.Uint(b, uint64(e.Origin))
		b = msgp.Uint(b, e.Seq)
		b = msgp.Uint(b, uint64(e.TS))
		if e.Delete {
			b = append(b, 0xc3)
		} else {
			b = append(b, 0xc2)
		}
		b = msgp.Bin(b, e.Value)
	}
	return b
}

// appendRecordFast appends r's encoding.
func appendRecordFast(b []byte, r *Record) []byte {
	b = append(b, 0x96)
	b = appendVV(b, r.Applied)
	b = appendEntries(b, r.Exist)
	b = appendVV(b, r.ExCov)
	b = appendEntries(b, r.Dels)
	b = appendVV(b, r.DelCov)
	b = msgp.ArrayHeader(b, len(r.Fields))
	for i := range r.Fields {
		f := &r.Fields[i]
		b = append(b, 0x93)
		b = msgp.Str(b, f.Name)
		b = appendEntries(b, f.Cands)
		b = appendVV(b, f.Cov)
	}
	return b
}

// appendWriteFast appends w's encoding in the layout the codec reads for
// wireWrite.
func appendWriteFast(b []byte, w *Write) []byte {
	b = append(b, 0x99)
	b = msgp.Str(b, w.Table)
	b = msgp.Str(b, w.ID)
	b = msgp.Uint(b, uint64(w.Origin))
	b = msgp.Uint(b, w.Seq)
	b = msgp.Uint(b, uint64(w.TS))
	b = appendVV(b, w.Ctx)
	b = msgp.Bool(b, w.Delete)
	b = msgp.Bool(b, w.Elided)
	b = msgp.ArrayHeader(b, len(w.Fields))
	for i := range w.Fields {
		b = append(b, 0x92)
		b = msgp.Str(b, w.Fields[i].Name)
		b = msgp.Bin(b, w.Fields[i].Value)
	}
	return b
}
