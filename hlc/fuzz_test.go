package hlc_test

import (
	"bytes"
	"cmp"
	"math"
	"testing"

	"github.com/replicad/replicad/hlc"
)

func FuzzStampKeyOrder(f *testing.F) {
	const maxU = math.MaxUint64
	maxTS := uint64(hlc.New(hlc.MaxWall, math.MaxUint16))
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(maxU), uint64(maxU), uint64(maxU), uint64(maxU))
	f.Add(uint64(0), uint64(0), uint64(maxU), uint64(maxU))
	f.Add(uint64(5), uint64(1), uint64(5), uint64(2))            // timestamp tie: node decides
	f.Add(uint64(5), uint64(maxU), uint64(6), uint64(1))         // timestamp decides over node
	f.Add(uint64(0xffff), uint64(1), uint64(0x10000), uint64(1)) // counter full vs next ms
	f.Add(maxTS, uint64(0xff), maxTS, uint64(0x100))             // byte order of the node part
	f.Add(uint64(hlc.New(1_700_000_000_000, 3)), uint64(7), uint64(hlc.New(1_700_000_000_000, 3)), uint64(7))
	f.Fuzz(func(t *testing.T, a1, n1, a2, n2 uint64) {
		s1 := hlc.Stamp{TS: hlc.Timestamp(a1), Node: hlc.NodeID(n1)}
		s2 := hlc.Stamp{TS: hlc.Timestamp(a2), Node: hlc.NodeID(n2)}
		k1, k2 := s1.AppendKey(nil), s2.AppendKey(nil)
		if len(k1) != hlc.StampKeyLen {
			t.Fatalf("len(%v.AppendKey(nil)) = %d, want %d", s1, len(k1), hlc.StampKeyLen)
		}
		if got, want := bytes.Compare(k1, k2), s1.Compare(s2); got != want {
			t.Errorf("bytes.Compare(key(%v), key(%v)) = %d, want Compare = %d", s1, s2, got, want)
		}
		if got, want := s2.Compare(s1), -s1.Compare(s2); got != want {
			t.Errorf("%v.Compare(%v) = %d, want %d (antisymmetry)", s2, s1, got, want)
		}
		if got, want := s1.Less(s2), s1.Compare(s2) < 0; got != want {
			t.Errorf("%v.Less(%v) = %t, want %t", s1, s2, got, want)
		}
		if got, want := s1.Compare(s2), cmp.Or(cmp.Compare(a1, a2), cmp.Compare(n1, n2)); got != want {
			t.Errorf("%v.Compare(%v) = %d, want %d (timestamp, then node)", s1, s2, got, want)
		}
		if got, want := bytes.Compare(s1.TS.AppendKey(nil), s2.TS.AppendKey(nil)), cmp.Compare(a1, a2); got != want {
			t.Errorf("bytes.Compare(key(%v), key(%v)) = %d, want %d", s1.TS, s2.TS, got, want)
		}
		for _, c := range []struct {
			s hlc.Stamp
			k []byte
		}{{s1, k1}, {s2, k2}} {
			got, err := hlc.DecodeStampKey(c.k)
			if err != nil || got != c.s {
				t.Errorf("DecodeStampKey(%x) = %v, %v; want %v, nil", c.k, got, err, c.s)
			}
		}
		// Appending to a prefix keeps it and appends the same key.
		if got := s2.AppendKey(k1); !bytes.Equal(got[:hlc.StampKeyLen], k1) || !bytes.Equal(got[hlc.StampKeyLen:], k2) {
			t.Errorf("%v.AppendKey(%x) = %x, want %x%x", s2, k1, got, k1, k2)
		}
	})
}

func FuzzTimestampParse(f *testing.F) {
	for _, s := range []string{
		"0.0", "0.1", "1.0", "1700000000000.42", "281474976710655.65535",
		"281474976710656.0", "1.65536", "", ".", "1.", ".1", "1.2.3",
		"-1.0", "-0.0", "+1.0", "01.00", "1.-1", "9223372036854775808.0",
	} {
		f.Add(s, uint64(0))
	}
	f.Add("x", uint64(math.MaxUint64))
	f.Add("x", uint64(hlc.New(hlc.MaxWall, 0)))
	f.Add("x", uint64(hlc.New(1_700_000_000_000, math.MaxUint16)))
	f.Fuzz(func(t *testing.T, s string, v uint64) {
		// Whatever String prints, ParseTimestamp reads back.
		ts := hlc.Timestamp(v)
		str := ts.String()
		got, err := hlc.ParseTimestamp(str)
		if err != nil || got != ts {
			t.Errorf("ParseTimestamp(%q) = %#x, %v; want %#x, nil", str, uint64(got), err, v)
		}

		// Arbitrary input never panics; a parsed timestamp round-trips.
		p, err := hlc.ParseTimestamp(s)
		if err != nil {
			if p != 0 {
				t.Errorf("ParseTimestamp(%q) = %v with error %v, want 0", s, p, err)
			}
			return
		}
		again, err := hlc.ParseTimestamp(p.String())
		if err != nil || again != p {
			t.Errorf("ParseTimestamp(%q) = %v, but ParseTimestamp(%q) = %v, %v; want %v, nil",
				s, p, p.String(), again, err, p)
		}
	})
}
