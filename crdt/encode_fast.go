package crdt

// Hand-written msgpack encoding of records, in the layout the codec reads
// for wireRecord (StoreHandle: structs as arrays, byte slices as bin; empty
// lists as empty arrays), without reflection: records are encoded once per
// write on the store's hot path. Decoding stays with the codec;
// TestFastEncodingRoundTrip checks the two agree.

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	n := len(v)
	switch {
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

func appendVV(b []byte, v VV) []byte {
	b = appendArrayHeader(b, len(v))
	for _, d := range v {
		b = append(b, 0x92)
		b = appendUint(b, uint64(d.Node))
		b = appendUint(b, d.Seq)
	}
	return b
}

func appendEntries(b []byte, es []Entry) []byte {
	b = appendArrayHeader(b, len(es))
	for i := range es {
		e := &es[i]
		b = append(b, 0x95)
		b = appendUint(b, uint64(e.Origin))
		b = appendUint(b, e.Seq)
		b = appendUint(b, uint64(e.TS))
		if e.Delete {
			b = append(b, 0xc3)
		} else {
			b = append(b, 0xc2)
		}
		b = appendBin(b, e.Value)
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
	b = appendArrayHeader(b, len(r.Fields))
	for i := range r.Fields {
		f := &r.Fields[i]
		b = append(b, 0x93)
		b = appendStr(b, f.Name)
		b = appendEntries(b, f.Cands)
		b = appendVV(b, f.Cov)
	}
	return b
}

// appendWriteFast appends w's encoding in the layout the codec reads for
// wireWrite.
func appendWriteFast(b []byte, w *Write) []byte {
	b = append(b, 0x99)
	b = appendStr(b, w.Table)
	b = appendStr(b, w.ID)
	b = appendUint(b, uint64(w.Origin))
	b = appendUint(b, w.Seq)
	b = appendUint(b, uint64(w.TS))
	b = appendVV(b, w.Ctx)
	b = appendBool(b, w.Delete)
	b = appendBool(b, w.Elided)
	b = appendArrayHeader(b, len(w.Fields))
	for i := range w.Fields {
		b = append(b, 0x92)
		b = appendStr(b, w.Fields[i].Name)
		b = appendBin(b, w.Fields[i].Value)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}
