package crdt

import (
	"bytes"
	"testing"
)

// FuzzHistories explores random histories beyond the fixed seeds of
// TestRandomHistories; `make fuzz` runs it for longer.
func FuzzHistories(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		if err := runHistory(seed); err != nil {
			t.Fatalf("history seed %d: %v", seed, err)
		}
	})
}

// FuzzValueFromJSON: any input either fails cleanly or gives a canonical
// value that round-trips through JSON to the same encoding.
func FuzzValueFromJSON(f *testing.F) {
	for _, s := range []string{`null`, `1`, `-1.5`, `"x"`, `{"b":1,"a":[true,null]}`, `18446744073709551615`, `1e400`, `[[[[]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ValueFromJSON(data)
		if err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("ValueFromJSON(%q) gave a non-canonical value: %v", data, err)
		}
		j, err := v.JSON()
		if err != nil {
			t.Fatalf("JSON of %x: %v", []byte(v), err)
		}
		v2, err := ValueFromJSON(j)
		if err != nil || !bytes.Equal(v, v2) {
			t.Fatalf("round trip of %q through %s: %x != %x (%v)", data, j, []byte(v), []byte(v2), err)
		}
	})
}

// FuzzDecodeWrite: hostile bytes never panic, and what decodes re-encodes
// to a write that decodes equal.
func FuzzDecodeWrite(f *testing.F) {
	w := &Write{Table: "t", ID: "x", Origin: 7, Seq: 3, TS: 99, Ctx: VV{{1, 2}}, Fields: []FieldValue{{"a", MustValue("v")}}}
	b, _ := AppendWrite(nil, w)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{0x99, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := DecodeWrite(data, true)
		if err != nil {
			return
		}
		b, err := AppendWrite(nil, w)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeWrite(b, true); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// FuzzDecodeRecord: a garbled stored record is an error, never a panic.
func FuzzDecodeRecord(f *testing.F) {
	var r Record
	r.Apply(&Write{Origin: 1, Seq: 1, TS: 5, Fields: []FieldValue{{"a", MustValue(1)}}}, nil)
	b, _ := r.MarshalBinary()
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := r.UnmarshalBinary(data); err != nil {
			return
		}
		r.Digest()
		r.Values()
	})
}
