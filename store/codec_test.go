package store

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendFeedValueMatchesCodec(t *testing.T) {
	for _, c := range []feedValue{
		{Origin: 0, Seq: 0, Table: "t", ID: "x"},
		{Origin: 127, Seq: 128, Table: "tab", ID: strings.Repeat("i", 31)},
		{Origin: 1 << 16, Seq: 1<<32 + 5, Table: strings.Repeat("t", 64), ID: strings.Repeat("é", 128)},
		{Origin: ^uint64(0), Seq: 65535, Table: "a", ID: strings.Repeat("z", 70000)},
	} {
		want, err := encodeValue(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		got := appendFeedValue(nil, c.Origin, c.Seq, c.Table, c.ID)
		if !bytes.Equal(got, want) {
			t.Fatalf("feed value %+v: got %x, want %x", c, got[:min(len(got), 40)], want[:min(len(want), 40)])
		}
		var back feedValue
		if err := decodeValue([]byte("f"), got, &back); err != nil || back != c {
			t.Fatalf("decode: %v %+v", err, back)
		}
	}
}
