package crdt

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/replicad/replicad/hlc"
)

// mergeWorkload is a stream of single-field writes into records of 20
// fields, made by 4 origins that see each other's writes (causal contexts),
// as a hub applying a fleet's edits would see them.
type mergeWorkload struct {
	writes  []*Write
	records int
}

func newMergeWorkload(nrec, nwrites int) *mergeWorkload {
	rng := rand.New(rand.NewPCG(1, 2))
	fields := make([]string, 20)
	for i := range fields {
		fields[i] = fmt.Sprintf("field%02d", i)
	}
	values := make([]Value, 64)
	for i := range values {
		values[i] = MustValue(fmt.Sprintf("value-%d", i))
	}
	recs := make([]Record, nrec)
	seqs := make([]uint64, 5)
	ts := hlc.Timestamp(hlc.New(1_700_000_000_000, 0))
	wl := &mergeWorkload{records: nrec}
	// Fill every field once, then random single-field edits.
	for i := 0; i < nwrites; i++ {
		ri := rng.IntN(nrec)
		f := fields[rng.IntN(len(fields))]
		if i < nrec*len(fields) {
			ri, f = i/len(fields), fields[i%len(fields)]
		}
		o := 1 + rng.IntN(4)
		seqs[o]++
		ts++
		w := &Write{Table: "t", ID: fmt.Sprint(ri), Origin: hlc.NodeID(o), Seq: seqs[o], TS: ts,
			Ctx: recs[ri].Context(), Fields: []FieldValue{{f, values[rng.IntN(len(values))]}}}
		recs[ri].Apply(w, nil)
		wl.writes = append(wl.writes, w)
	}
	// Lay the stream out contiguously, as writes decoded from a chunk are.
	ws := make([]Write, len(wl.writes))
	var dots []Dot
	var fvs []FieldValue
	for _, w := range wl.writes {
		dots = append(dots, w.Ctx...)
		fvs = append(fvs, w.Fields...)
	}
	di, fi := 0, 0
	for i, w := range wl.writes {
		ws[i] = *w
		ws[i].Ctx = dots[di : di+len(w.Ctx) : di+len(w.Ctx)]
		ws[i].Fields = fvs[fi : fi+len(w.Fields) : fi+len(w.Fields)]
		di += len(w.Ctx)
		fi += len(w.Fields)
		wl.writes[i] = &ws[i]
	}
	return wl
}

func idOf(w *Write) int {
	n := 0
	for _, c := range w.ID {
		n = n*10 + int(c-'0')
	}
	return n
}

// BenchmarkMerge applies the stream to fresh records: one op is one field
// merge, with the outcome the policy layer reads. The target is 5
// million per second on one core (<= 200 ns/op). With 100 records the
// working set stays in cache and the figure is the merge's CPU cost; with
// 10,000 it includes cache misses on random records.
func BenchmarkMerge(b *testing.B) {
	for _, nrec := range []int{100, 1000, 10000} {
		for _, withOutcome := range []bool{true, false} {
			name := fmt.Sprintf("records=%d/outcome=%v", nrec, withOutcome)
			b.Run(name, func(b *testing.B) { benchMerge(b, nrec, withOutcome) })
		}
	}
}

func benchMerge(b *testing.B, nrec int, withOutcome bool) {
	wl := newMergeWorkload(nrec, max(200_000, nrec*20*2))
	ids := make([]int, len(wl.writes))
	for i, w := range wl.writes {
		ids[i] = idOf(w)
	}
	recs := make([]Record, nrec)
	var out *Outcome
	if withOutcome {
		out = &Outcome{}
	}
	b.ReportAllocs()
	b.ResetTimer()
	j := 0
	for i := 0; i < b.N; i++ {
		if j == len(wl.writes) {
			b.StopTimer()
			recs = make([]Record, nrec)
			j = 0
			b.StartTimer()
		}
		recs[ids[j]].Apply(wl.writes[j], out)
		j++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mmerges/s")
}

// TestMergeSteadyStateAllocs keeps the steady-state merge path free of
// allocations.
func TestMergeSteadyStateAllocs(t *testing.T) {
	wl := newMergeWorkload(10, 5000)
	recs := make([]Record, 10)
	var out Outcome
	for _, w := range wl.writes[:4000] {
		recs[idOf(w)].Apply(w, &out)
	}
	rest := wl.writes[4000:]
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		w := rest[i%len(rest)]
		i++
		recs[idOf(w)].Apply(w, &out)
	})
	if allocs > 0 {
		t.Fatalf("steady-state Apply allocates %.2f times per write, want 0", allocs)
	}
}
