package report

import "fmt"

// queryFigures: queries and indexes in-process (package query on the
// store), each against raw Pebble or the same store without indexes,
// measured in the same run.
func queryFigures() []Figure {
	const (
		idx  = "BenchmarkQueryIndexed"
		scan = "BenchmarkQueryScan"
		w3   = "BenchmarkWriteIndexed/sync=true/indexes=3"
		w0   = "BenchmarkWriteIndexed/sync=true/indexes=0"
	)
	needs := func(b string) func(func(Ref) (float64, bool)) (bool, string) {
		return func(get func(Ref) (float64, bool)) (bool, string) {
			if n, _ := get(ref(b+"/query", "records")); n < 1e6 {
				return false, fmt.Sprintf("run on %.0f records; the target is for 1,000,000 (REPLICAD_QUERY_BENCH_RECORDS)", n)
			}
			return true, ""
		}
	}
	return []Figure{
		{ID: "query-indexed-p99", Title: "query by equality on an indexed field returning 50 records (1,000,000 records of 20 fields), in-process: p99 latency", Value: ref(idx+"/query", "p99-µs"), Unit: "µs",
			Baseline: pref(idx+"/raw-pebble", "p99-µs"), BaselineName: "raw Pebble iterating over the same 50 records' keys and decoding them, p99",
			Target: "≤ 3x", Check: ratioAtMost(ref(idx+"/query", "p99-µs"), ref(idx+"/raw-pebble", "p99-µs"), 3), Needs: needs(idx)},
		{ID: "query-indexed-p50", Title: "the same query: p50 latency", Value: ref(idx+"/query", "p50-µs"), Unit: "µs",
			Baseline: pref(idx+"/raw-pebble", "p50-µs"), BaselineName: "raw Pebble, the same 50 records, p50"},
		{ID: "query-scan", Title: "the same query on a field no index covers (a scan): records examined per second", Value: ref(scan+"/query", "records/s"),
			Baseline: pref(scan+"/raw-pebble", "records/s"), BaselineName: "raw Pebble iterating over every record and decoding it",
			Target: "≥ 0.5x", Check: ratioAtLeast(ref(scan+"/query", "records/s"), ref(scan+"/raw-pebble", "records/s"), 0.5), Needs: needs(scan)},
		{ID: "write-3-indexes", Title: "durable local write (3 fields of a 20-field record changed) to a table with 3 indexes: p50 latency", Value: ref(w3, "p50-µs"), Unit: "µs",
			Baseline: pref(w0, "p50-µs"), BaselineName: "the same writes to a table without indexes, p50",
			Target: "≤ 1.3x", Check: ratioAtMost(ref(w3, "p50-µs"), ref(w0, "p50-µs"), 1.3), Cost: true},
		{ID: "write-3-indexes-mean", Title: "the same writes: mean time", Value: ref(w3, "ns/op"), Unit: "ns",
			Baseline: pref(w0, "ns/op"), BaselineName: "the same writes without indexes, mean",
			Why: "the mean carries the fsyncs' and the shared machine's outliers, which the p50 leaves out"},
		{ID: "write-3-indexes-nosync", Title: "the same writes without fsync (NoSync): p50 latency", Value: ref("BenchmarkWriteIndexed/sync=false/indexes=3", "p50-µs"), Unit: "µs",
			Baseline: pref("BenchmarkWriteIndexed/sync=false/indexes=0", "p50-µs"), BaselineName: "the same writes without indexes, without fsync, p50",
			Why: "without the fsync that dominates a durable write, what the index entries cost the write path"},
	}
}

// ratioAtMost checks median(num)/median(den) ≤ limit.
func ratioAtMost(num, den Ref, limit float64) func(func(Ref) (float64, bool)) (bool, string, bool) {
	return func(get func(Ref) (float64, bool)) (bool, string, bool) {
		a, ok1 := get(num)
		b, ok2 := get(den)
		if !ok1 || !ok2 || b == 0 {
			return false, "", false
		}
		return a/b <= limit, fmt.Sprintf("%.2fx ≤ %.2fx", a/b, limit), true
	}
}
