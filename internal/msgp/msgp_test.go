package msgp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ugorji/go/codec"
)

// TestMatchesCodec: every appender writes what the codec writes.
func TestMatchesCodec(t *testing.T) {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	enc := func(v any) []byte {
		var out []byte
		if err := codec.NewEncoderBytes(&out, h).Encode(v); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, u := range []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, ^uint64(0)} {
		if got, want := Uint(nil, u), enc(u); !bytes.Equal(got, want) {
			t.Errorf("Uint(%d) = %x, want %x", u, got, want)
		}
	}
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		if got, want := Str(nil, s), enc(s); !bytes.Equal(got, want) {
			t.Errorf("Str(len %d) = %x..., want %x...", n, got[:min(8, len(got))], want[:min(8, len(want))])
		}
		bs := []byte(s)
		if got, want := Bin(nil, bs), enc(bs); !bytes.Equal(got, want) {
			t.Errorf("Bin(len %d) = %x..., want %x...", n, got[:min(8, len(got))], want[:min(8, len(want))])
		}
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		want := enc(make([]any, n))
		if got := ArrayHeader(nil, n); !bytes.Equal(got, want[:len(got)]) {
			t.Errorf("ArrayHeader(%d) = %x, want %x", n, got, want[:len(got)])
		}
	}
	if !bytes.Equal(Bool(nil, true), enc(true)) || !bytes.Equal(Bool(nil, false), enc(false)) {
		t.Error("Bool differs from the codec")
	}
	if !bytes.Equal(Bin(nil, nil), enc([]byte(nil))) {
		t.Errorf("Bin(nil) = %x, want %x", Bin(nil, nil), enc([]byte(nil)))
	}
}
