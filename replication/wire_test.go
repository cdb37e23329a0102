package replication

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// sameWrite reports whether a and b hold the same write, field by field
// (values byte for byte; an empty slice equals nil).
func sameWrite(a, b *crdt.Write) bool {
	if a.Table != b.Table || a.ID != b.ID || a.Origin != b.Origin || a.Seq != b.Seq || a.TS != b.TS ||
		a.Delete != b.Delete || a.Elided != b.Elided || !a.Ctx.Equal(b.Ctx) || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || !bytes.Equal(a.Fields[i].Value, b.Fields[i].Value) {
			return false
		}
	}
	return true
}

// writeGen makes random valid writes: many origins, sequence numbers in
// order with gaps (and sometimes not), stamps close together with jumps,
// unicode ids, every kind of value, deletes, elided writes, contexts of
// every size.
type writeGen struct {
	rng     *rand.Rand
	origins []hlc.NodeID
	seq     map[hlc.NodeID]uint64
	ts      uint64
}

func newWriteGen(rng *rand.Rand, nOrigins int, known ...hlc.NodeID) *writeGen {
	g := &writeGen{rng: rng, seq: map[hlc.NodeID]uint64{}, ts: uint64(hlc.New(1_712_345_678_901, 0))}
	g.origins = append(g.origins, known...)
	for len(g.origins) < nOrigins {
		var n hlc.NodeID
		switch rng.IntN(4) {
		case 0:
			n = hlc.NodeID(rng.IntN(300) + 1) // small ids
		case 1:
			n = ^hlc.NodeID(0) - hlc.NodeID(rng.IntN(3))
		default:
			n = hlc.NodeID(rng.Uint64() | 1)
		}
		g.origins = append(g.origins, n)
	}
	return g
}

var genIDs = []string{"1", "wo-17", "ключ", "日本語のキー", "emoji-🙂🚀", "a b\tc", strings.Repeat("é", 128), strings.Repeat("x", 256)}

func (g *writeGen) value() crdt.Value {
	r := g.rng
	var v any
	switch r.IntN(10) {
	case 0:
		v = nil
	case 1:
		v = r.IntN(2) == 0
	case 2:
		v = r.Int64() - r.Int64()
	case 3:
		v = r.Float64() * 1e6
	case 4:
		v = strings.Repeat("ü", r.IntN(40000))
	case 5:
		v = []any{1, "two", map[string]any{"three": 3.5, "four": []any{}}}
	case 6:
		m := map[string]any{}
		for i := range r.IntN(20) {
			m[fmt.Sprint("k", i)] = i * 1000003
		}
		v = m
	case 7:
		v = r.IntN(128)
	default:
		v = fmt.Sprint("v", r.IntN(1000))
	}
	return crdt.MustValue(v)
}

func (g *writeGen) write() *crdt.Write {
	r := g.rng
	o := g.origins[r.IntN(len(g.origins))]
	if r.IntN(3) > 0 {
		o = g.origins[0]
	}
	switch r.IntN(10) {
	case 0:
		g.seq[o] += uint64(r.IntN(1_000_000)) + 1
	case 1:
		if g.seq[o] > 10 {
			g.seq[o] -= uint64(r.IntN(10)) // out of order
		}
	default:
		g.seq[o]++
	}
	if g.seq[o] == 0 {
		g.seq[o] = 1
	}
	switch r.IntN(8) {
	case 0:
		g.ts += uint64(r.Int64N(1 << 40))
	case 1:
		g.ts -= uint64(r.IntN(1 << 20))
	case 2:
		g.ts = uint64(r.IntN(100000)) + 1 // far back
	case 3:
		g.ts = ^uint64(0) - uint64(r.IntN(100000)) // far ahead
	default:
		g.ts += uint64(r.IntN(3 << 16))
	}
	if g.ts == 0 {
		g.ts = 1
	}
	w := &crdt.Write{
		Table:  []string{"t", "work_orders", "a.b-c_D9", strings.Repeat("T", 64)}[r.IntN(4)],
		ID:     genIDs[r.IntN(len(genIDs))],
		Origin: o, Seq: g.seq[o], TS: hlc.Timestamp(g.ts),
	}
	if r.IntN(3) == 0 {
		w.ID = fmt.Sprint("rec-", r.IntN(1000))
	}
	if r.IntN(6) == 0 {
		w.Delete = true
	} else {
		names := map[string]bool{}
		for range r.IntN(6) {
			names[[]string{"start", "end", "状态", "a", "zz", fmt.Sprint("f", r.IntN(100))}[r.IntN(6)]] = true
		}
		for n := range names {
			w.Fields = append(w.Fields, crdt.FieldValue{Name: n, Value: g.value()})
		}
		sort.Slice(w.Fields, func(i, j int) bool { return w.Fields[i].Name < w.Fields[j].Name })
	}
	// Context: maybe the own origin's previous write, maybe others.
	if r.IntN(4) > 0 {
		for range r.IntN(5) {
			n := g.origins[r.IntN(len(g.origins))]
			s := uint64(r.IntN(1000)) + 1
			if r.IntN(4) == 0 {
				s = r.Uint64()>>1 + 1
			}
			if n == o {
				if w.Seq == 1 {
					continue
				}
				s = w.Seq - 1 - uint64(r.IntN(int(min(w.Seq-1, 5000))))
			}
			w.Ctx.Set(crdt.Dot{Node: n, Seq: s})
		}
	}
	if r.IntN(8) == 0 && (w.Delete || len(w.Fields) > 0) {
		w = w.Elide()
	}
	if err := w.Validate(); err != nil {
		panic(err)
	}
	return w
}

func roundTrip(t testing.TB, ws []*crdt.Write, known ...hlc.NodeID) []byte {
	t.Helper()
	b, err := encodeChunkWrites(ws, known...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeChunkWrites(b, known...)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(ws) {
		t.Fatalf("decoded %d writes, want %d", len(got), len(ws))
	}
	for i := range ws {
		if !sameWrite(ws[i], got[i]) {
			t.Fatalf("write %d:\n got %+v\nwant %+v", i, got[i], ws[i])
		}
	}
	return b
}

func TestWireRoundTrip(t *testing.T) {
	seed := seedFor(t)
	t.Logf("seed %d (replay with -sync.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	known := []hlc.NodeID{7, 1 << 60}
	for iter := range 300 {
		nOrigins := []int{1, 2, 3, 10, 200}[iter%5]
		g := newWriteGen(rng, nOrigins, known[:iter%3]...)
		var ws []*crdt.Write
		for range rng.IntN(60) {
			ws = append(ws, g.write())
		}
		// In HLC order most of the time, as senders send them.
		if iter%4 != 0 {
			sort.SliceStable(ws, func(i, j int) bool { return ws[i].TS < ws[j].TS })
		}
		b := roundTrip(t, ws, known[:iter%3]...)
		// A body is the concatenation of its writes: no prefix decodes
		// to more writes, and every cut either decodes a prefix of the
		// writes or fails cleanly.
		if iter%10 == 0 {
			for cut := 0; cut < len(b); cut += 1 + len(b)/200 {
				got, err := decodeChunkWrites(b[:cut], known[:iter%3]...)
				if err == nil && len(got) > len(ws) {
					t.Fatalf("cut at %d decodes %d writes", cut, len(got))
				}
			}
		}
	}
}

func TestWireEdgeCases(t *testing.T) {
	v := crdt.MustValue("x")
	ws := []*crdt.Write{
		{Table: "t", ID: "1", Origin: 1, Seq: 1, TS: 1, Fields: []crdt.FieldValue{{Name: "a", Value: v}}},
		{Table: "t", ID: "1", Origin: 1, Seq: 2, TS: 1, Ctx: crdt.VV{{Node: 1, Seq: 1}}, Delete: true},
		{Table: "t", ID: "2", Origin: ^hlc.NodeID(0), Seq: ^uint64(0), TS: ^hlc.Timestamp(0),
			Ctx: crdt.VV{{Node: 1, Seq: ^uint64(0)}, {Node: ^hlc.NodeID(0), Seq: ^uint64(0) - 1}}, Fields: []crdt.FieldValue{{Name: "a", Value: v}, {Name: "b", Value: crdt.Null}}},
		{Table: "t", ID: "2", Origin: 5, Seq: 9, TS: 3, Delete: true, Elided: true},
		{Table: "t", ID: "3", Origin: 5, Seq: 10, TS: 3, Elided: true, Fields: []crdt.FieldValue{{Name: "a"}, {Name: "b"}}},
		{Table: "t", ID: "4", Origin: 5, Seq: 1, TS: 2, Fields: []crdt.FieldValue{{Name: "a", Value: v}}}, // back in seq
	}
	for _, known := range [][]hlc.NodeID{nil, {1}, {5, 1}, {1, 1}} {
		roundTrip(t, ws, known...)
		for i := range ws {
			roundTrip(t, ws[i:i+1], known...)
		}
	}
	if b, err := encodeChunkWrites(nil); err != nil || len(b) != 0 {
		t.Fatalf("empty: %x %v", b, err)
	}
	// Invalid writes are refused by the encoder.
	bad := []*crdt.Write{
		{Table: "t", ID: "1", Origin: 1, Seq: 0, TS: 1},
		{Table: "t", ID: "1", Origin: 1, Seq: 1, TS: 1, Ctx: crdt.VV{{Node: 1, Seq: 1}}},
		{Table: "t", ID: "1", Origin: 1, Seq: 1, TS: 1, Fields: []crdt.FieldValue{{Name: "a", Value: crdt.Value{0x92, 1}}}},
	}
	for _, w := range bad {
		if _, err := encodeChunkWrites([]*crdt.Write{w}); err == nil {
			t.Errorf("encoded invalid write %+v", w)
		}
	}
}

func TestWireHostile(t *testing.T) {
	uv := func(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
	cases := map[string][]byte{
		"no origin":        {0x00, 0x02, 0x02, 't', 0x02, '1', 0xc0},
		"bad origin ref":   {byte(originRef << hdrOriginShift), 0x05},
		"origin code 3":    {byte(3 << hdrOriginShift)},
		"ctx code 3":       {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount | 3<<hdrCtxShift), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xc0},
		"zero node":        {byte(originInline << hdrOriginShift), 0, 0, 0, 0, 0, 0, 0, 0},
		"huge field count": uv([]byte{byte(originInline<<hdrOriginShift | hdrSeqNext), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1'}, 1<<62),
		"huge ctx count":   uv([]byte{byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount | ctxList<<hdrCtxShift), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xc0}, 1<<40),
		"huge string":      uv([]byte{byte(originInline<<hdrOriginShift | hdrSeqNext), 1, 0, 0, 0, 0, 0, 0, 0, 0x00}, 1<<62),
		"bad table":        {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, '/', 0x02, '1', 0xc0},
		"nul in id":        {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, 0, 0xc0},
		"value array32":    {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"value not canon":  {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xcc, 0x01},
		"value 0xc1":       {byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xc1},
		"ctx covers write": {byte(originInline<<hdrOriginShift | hdrUsualCount | ctxOwnOnly<<hdrCtxShift), 1, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x00, 0x02, 't', 0x02, '1', 0x02, 'a', 0xc0, 0x05},
		"stamp overflow":   uv([]byte{byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0}, zigzag(1<<50)<<2),
		"stamp zero":       append(uv([]byte{byte(originInline<<hdrOriginShift | hdrSeqNext | hdrUsualCount), 1, 0, 0, 0, 0, 0, 0, 0}, zigzag(-wireEpochMs)<<2), 0x02, 't', 0x02, '1', 0x02, 'a', 0xc0),
	}
	for name, b := range cases {
		if ws, err := decodeChunkWrites(b); err == nil {
			t.Errorf("%s: decoded %+v", name, ws[0])
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestWireHugeWrite: one write of 100,000 fields round-trips.
func TestWireHugeWrite(t *testing.T) {
	w := &crdt.Write{Table: "big", ID: "one", Origin: 42, Seq: 3, TS: hlc.New(1_712_345_678_901, 5), Ctx: crdt.VV{{Node: 42, Seq: 2}, {Node: 43, Seq: 9}}}
	for i := range 100_000 {
		w.Fields = append(w.Fields, crdt.FieldValue{Name: fmt.Sprintf("field%06d", i), Value: crdt.MustValue(i)})
	}
	b := roundTrip(t, []*crdt.Write{w}, 42)
	if max := maxWireSize(w); len(b) > max {
		t.Fatalf("encoded %d bytes, bound says %d", len(b), max)
	}
	old, _ := crdt.AppendWrite(nil, w)
	t.Logf("100,000 fields: %d bytes (crdt.AppendWrite: %d)", len(b), len(old))
}

// TestWireSizeBound: maxWireSize bounds every write's encoding, whatever
// precedes it.
func TestWireSizeBound(t *testing.T) {
	seed := seedFor(t)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	g := newWriteGen(rng, 50)
	e := newChunkEncoder(1, 2)
	for range 3000 {
		w := g.write()
		before := e.Len()
		if err := e.Add(w); err != nil {
			t.Fatal(err)
		}
		if got, bound := e.Len()-before, maxWireSize(w); got > bound {
			t.Fatalf("write took %d bytes, bound %d: %+v", got, bound, w)
		}
	}
}

func TestMsgpackItemLen(t *testing.T) {
	for _, v := range []any{nil, true, 1, -1, 200, -200, 70000, -70000, 1 << 40, -(1 << 40), 1.5, "", "abc", strings.Repeat("x", 40), strings.Repeat("x", 300), strings.Repeat("x", 70000),
		[]any{}, []any{1, []any{2, map[string]any{"a": 1}}}, map[string]any{"k": []any{1, 2, 3}}, make([]any, 20), make([]any, 70000)} {
		b := crdt.MustValue(v)
		n, ok := msgpackItemLen(append(bytes.Clone(b), 0xc0, 0xc0))
		if !ok || n != len(b) {
			t.Errorf("%T %.20v: got %d %v, want %d", v, v, n, ok, len(b))
		}
		for cut := 0; cut < len(b); cut++ {
			if cut == 64 && len(b) > 128 {
				cut = len(b) - 64 // the ends are what matters
			}
			if _, ok := msgpackItemLen(b[:cut]); ok {
				t.Errorf("%T %.20v cut at %d: ok", v, v, cut)
			}
		}
	}
}

// FuzzDecodeChunkWrites: any bytes either fail cleanly or decode to valid
// writes that encode and decode again to the same writes.
func FuzzDecodeChunkWrites(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 12 {
		g := newWriteGen(rng, 1+i, 1, 2)
		var ws []*crdt.Write
		for range 1 + i {
			w := g.write()
			for j := range w.Fields { // keep the corpus small
				if len(w.Fields[j].Value) > 64 {
					w.Fields[j].Value = crdt.MustValue(j)
				}
			}
			ws = append(ws, w)
		}
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].TS < ws[j].TS })
		b, err := encodeChunkWrites(ws, 1, 2)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := decodeChunkWrites(data, 1, 2)
		if err != nil {
			return
		}
		b, err := encodeChunkWrites(ws, 1, 2)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		got, err := decodeChunkWrites(b, 1, 2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(got) != len(ws) {
			t.Fatalf("re-decoded %d writes, want %d", len(got), len(ws))
		}
		for i := range ws {
			if !sameWrite(ws[i], got[i]) {
				t.Fatalf("write %d differs after re-encoding", i)
			}
		}
	})
}

// TestValidValueFastPath: the decoder's fast path accepts only what
// crdt.Value.Validate accepts, and accepts every canonical string and
// one-byte value.
func TestValidValueFastPath(t *testing.T) {
	var vs []crdt.Value
	for i := range 256 {
		vs = append(vs, crdt.Value{byte(i)})
	}
	for _, n := range []int{0, 1, 31, 32, 33, 255, 256, 257, 65535, 65536, 65537} {
		s := strings.Repeat("a", n)
		vs = append(vs, crdt.MustValue(s), crdt.MustValue(s+"\xff"))
		enc := crdt.MustValue(s)
		for _, h := range [][]byte{{0xd9, byte(n)}, {0xda, byte(n >> 8), byte(n)}, {0xdb, 0, byte(n >> 16), byte(n >> 8), byte(n)}} {
			vs = append(vs, append(append(crdt.Value(nil), h...), enc[len(enc)-n:]...)) // other header sizes
		}
	}
	for _, v := range vs {
		fast := validValue(v) == nil
		slow := v.Validate() == nil
		if fast != slow {
			t.Errorf("%x...: fast path %v, Validate %v", v[:min(len(v), 6)], fast, slow)
		}
	}
}
