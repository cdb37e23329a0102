package crdt

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/replicad/replicad/hlc"
)

// randomWrite makes writes that exercise every length form of the
// encoding: long names (str8, str16), long values (bin16), large
// contexts (array16), large integers, deletes and elided writes.
func randomWrite(rng *rand.Rand) *Write {
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return strings.Repeat("x", 32+rng.IntN(300)) // str8 / str16
		default:
			return "s" + string(rune('a'+rng.IntN(26)))
		}
	}
	w := &Write{Table: str(), ID: str(), Origin: hlc.NodeID(1 + rng.Uint64N(1<<63)), Seq: 1 + rng.Uint64N([]uint64{100, 1 << 10, 1 << 20, 1 << 40}[rng.IntN(4)]),
		TS: hlc.Timestamp(1 + rng.Uint64())}
	nctx := []int{0, 1, 3, 20}[rng.IntN(4)]
	for i := range nctx {
		w.Ctx = append(w.Ctx, Dot{Node: hlc.NodeID(uint64(i+1) * 0x9e3779b97f4a7c), Seq: 1 + rng.Uint64N(1<<33)})
	}
	switch rng.IntN(6) {
	case 0:
		w.Delete = true
		return w
	case 1:
		w.Elided = true
	}
	nf := 1 + []int{0, 2, 20}[rng.IntN(3)]
	for i := range nf {
		f := FieldValue{Name: "f" + strings.Repeat("z", i)}
		if !w.Elided {
			v := []any{rng.IntN(1000), "short", strings.Repeat("v", 300+rng.IntN(70000)), nil, []any{1, "a"}}[rng.IntN(5)]
			f.Value = MustValue(v)
		}
		w.Fields = append(w.Fields, f)
	}
	return w
}

// TestDecodeWriteFast: the hand-written decoder agrees with the codec on
// both encoders' output, and on corrupted input it either agrees with the
// codec or leaves the input to it.
func TestDecodeWriteFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	fell := 0
	for i := range 3000 {
		w := randomWrite(rng)
		for _, enc := range []func([]byte, *Write) ([]byte, error){AppendWrite, appendWriteCodec} {
			data, err := enc(nil, w)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := decodeWriteFast(data)
			if !ok {
				t.Fatalf("write %d: the fast decoder refused a canonical encoding: %+v\n%x", i, w, data[:min(len(data), 120)])
			}
			slow, err := decodeWriteCodec(data)
			if err != nil {
				t.Fatal(err)
			}
			if tb, ok := WriteTable(data); !ok || string(tb) != w.Table {
				t.Fatalf("write %d: WriteTable %q, %v; want %q", i, tb, ok, w.Table)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("write %d: fast %+v, codec %+v", i, fast, slow)
			}
			// The result does not reference data.
			for j := range data {
				data[j] ^= 0xff
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("write %d: the decoded write references its input", i)
			}
			for j := range data {
				data[j] ^= 0xff
			}
			// Corruptions: a flipped byte, a truncation, a trailing byte.
			bad := append([]byte(nil), data...)
			switch rng.IntN(3) {
			case 0:
				bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
			case 1:
				bad = bad[:rng.IntN(len(bad))]
			default:
				bad = append(bad, 0)
			}
			if f, ok := decodeWriteFast(bad); ok {
				s, err := decodeWriteCodec(bad)
				if err != nil || !reflect.DeepEqual(f, s) {
					t.Fatalf("write %d: corrupted input: fast decoded %+v, codec %+v, %v", i, f, s, err)
				}
			} else {
				fell++
			}
		}
	}
	if fell == 0 {
		t.Fatal("no corrupted input fell back to the codec")
	}
}

// TestDecodeWriteAllocs keeps decoding a one-field write at three
// allocations: the write with its field and context, one string for the
// table, id and field names, one buffer for the values.
func TestDecodeWriteAllocs(t *testing.T) {
	w := &Write{Table: "work_orders", ID: "wo-000042", Origin: 0x9e3779b97f4a7c15, Seq: 77, TS: hlc.New(1_700_000_000_000, 3),
		Ctx: VV{{Node: 0x9e3779b97f4a7c15, Seq: 70}}, Fields: []FieldValue{{Name: "status", Value: MustValue("in_progress")}}}
	data, _ := AppendWrite(nil, w)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := DecodeWrite(data, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Fatalf("DecodeWrite of a one-field write: %.0f allocations, want at most 3", allocs)
	}
}

func BenchmarkDecodeWrite(b *testing.B) {
	w := &Write{Table: "work_orders", ID: "wo-000042", Origin: 0x9e3779b97f4a7c15, Seq: 77, TS: hlc.New(1_700_000_000_000, 3),
		Ctx: VV{{Node: 0x9e3779b97f4a7c15, Seq: 70}}, Fields: []FieldValue{{Name: "status", Value: MustValue("in_progress")}}}
	data, _ := AppendWrite(nil, w)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, ok := decodeWriteFast(data); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeWriteCodec(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
