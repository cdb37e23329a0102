package crdt

import (
	"bytes"
	"testing"
)

// TestFastEncodingRoundTrip: records from random histories, encoded by the
// hand-written encoder, decode (with the codec) to the same state, and the
// codec's own encoding of them decodes to the same state too.
func TestFastEncodingRoundTrip(t *testing.T) {
	n := 0
	for seed := uint64(1); seed <= 300; seed++ {
		s := newSim(seed)
		s.run(40)
		s.heal()
		for _, r := range s.replicas {
			for _, rec := range r.recs {
				fast, _ := rec.AppendBinary(nil)
				slow, err := rec.appendBinaryCodec(nil)
				if err != nil {
					t.Fatal(err)
				}
				var a, b Record
				if err := a.UnmarshalBinary(fast); err != nil {
					t.Fatalf("seed %d: decode fast encoding: %v", seed, err)
				}
				if err := b.UnmarshalBinary(slow); err != nil {
					t.Fatalf("seed %d: decode codec encoding: %v", seed, err)
				}
				if a.Digest() != rec.Digest() || b.Digest() != rec.Digest() {
					t.Fatalf("seed %d: round trip changed the record", seed)
				}
				for _, w := range s.all {
					fw, _ := AppendWrite(nil, w)
					cw, _ := appendWriteCodec(nil, w)
					d1, err1 := DecodeWrite(fw, true)
					d2, err2 := DecodeWrite(cw, true)
					if err1 != nil || err2 != nil {
						t.Fatalf("seed %d: decode write: %v %v", seed, err1, err2)
					}
					e1, _ := AppendWrite(nil, d1)
					e2, _ := AppendWrite(nil, d2)
					if !bytes.Equal(e1, fw) || !bytes.Equal(e2, fw) {
						t.Fatalf("seed %d: write %v changed across encodings", seed, w.Dot())
					}
				}
				again, _ := a.AppendBinary(nil)
				if !bytes.Equal(again, fast) {
					t.Fatalf("seed %d: encoding not stable across a round trip", seed)
				}
				n++
			}
		}
	}
	t.Logf("%d records", n)
}

func BenchmarkRecordEncode(b *testing.B) {
	wl := newMergeWorkload(100, 4000)
	recs := make([]Record, 100)
	for _, w := range wl.writes {
		recs[idOf(w)].Apply(w, nil)
	}
	var buf []byte
	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buf, _ = recs[i%100].AppendBinary(buf[:0])
		}
	})
	b.Run("codec", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buf, _ = recs[i%100].appendBinaryCodec(buf[:0])
		}
	})
}
