package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Figure is one row of the performance table: a measured value, the
// baseline measured in the same run (if any), their ratio, and a target.
type Figure struct {
	ID    string
	Title string
	Value Ref
	Unit  string // shown after the value ("" = the samples' unit)
	// Baseline, if set, is measured in the same run; BaselineName says
	// what it is.
	Baseline     *Ref
	BaselineName string
	// RatioOf, if set, is the numerator of the ratio instead of Value
	// (e.g. total bytes where Value is the overhead).
	RatioOf *Ref
	Target  string
	// Check says whether the target is met, from the medians of any
	// refs (nil: no target, reported only). It returns ok and a note.
	Check func(get func(Ref) (float64, bool)) (ok bool, note string, known bool)
	// Needs, if set, must hold for the target to apply (e.g. the
	// catch-up target is for 1,000,000 writes).
	Needs func(get func(Ref) (float64, bool)) (bool, string)
	// Cost marks a value that measures a cost (bytes or time spent
	// beyond something): it cannot be negative, so a negative sample
	// makes the row "invalid" (the measurement is wrong), never "met".
	Cost bool
	// Why, on a row reported beside a judged one on another definition,
	// says in one sentence why that definition is shown too.
	Why string
}

// Stat is the summary of a set of samples.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func statOf(xs []float64) (Stat, bool) {
	if len(xs) == 0 {
		return Stat{}, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}, true
}

// Row is a computed figure.
type Row struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	Value        *Stat  `json:"value,omitempty"`
	Unit         string `json:"unit"`
	Baseline     *Stat  `json:"baseline,omitempty"`
	BaselineName string `json:"baseline_name,omitempty"`
	// Ratio is the median of the run-by-run ratios when value and
	// baseline have as many samples (paired runs), else the ratio of the
	// medians.
	Ratio  *Stat  `json:"ratio,omitempty"`
	Target string `json:"target,omitempty"`
	// Status: "met", "missed", "reported" (no target), "n/a" (the target
	// does not apply to this run's size), "missing" (no samples),
	// "invalid" (a cost measured negative: the measurement is wrong).
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
	Source Ref    `json:"source"`
}

// Compute evaluates the figures over d.
func Compute(d *Data, figs []Figure) []Row {
	get := func(r Ref) (float64, bool) {
		s, ok := statOf(d.Samples[r])
		return s.Median, ok
	}
	var rows []Row
	for _, f := range figs {
		row := Row{ID: f.ID, Title: f.Title, Unit: f.Unit, Target: f.Target, BaselineName: f.BaselineName, Source: f.Value}
		vs := d.Samples[f.Value]
		v, ok := statOf(vs)
		if !ok {
			row.Status = "missing"
			row.Note = fmt.Sprintf("no samples of %s %q", f.Value.Bench, f.Value.Metric)
			rows = append(rows, row)
			continue
		}
		row.Value = &v
		if f.Cost && v.Min < 0 {
			row.Status = "invalid"
			row.Note = fmt.Sprintf("a cost cannot be negative (%s %s measured): the measurement is wrong", fmtNum(v.Min), d.Units[f.Value])
			rows = append(rows, row)
			continue
		}
		if row.Unit == "" {
			row.Unit = d.Units[f.Value]
		}
		if f.Baseline != nil {
			bs := d.Samples[*f.Baseline]
			if b, ok := statOf(bs); ok {
				row.Baseline = &b
				num := vs
				if f.RatioOf != nil {
					num = d.Samples[*f.RatioOf]
				}
				row.Ratio = ratioStat(num, bs)
			}
		}
		switch {
		case f.Check == nil:
			row.Status = "reported"
			row.Note = f.Why
		default:
			if f.Needs != nil {
				if ok, why := f.Needs(get); !ok {
					row.Status, row.Note = "n/a", why
					break
				}
			}
			ok, note, known := f.Check(get)
			switch {
			case !known:
				row.Status = "missing"
			case ok:
				row.Status = "met"
			default:
				row.Status = "missed"
			}
			row.Note = note
		}
		rows = append(rows, row)
	}
	return rows
}

// ratioStat pairs the samples run by run when both have as many, else
// divides the medians.
func ratioStat(num, den []float64) *Stat {
	if len(num) == 0 || len(den) == 0 {
		return nil
	}
	if len(num) == len(den) {
		rs := make([]float64, len(num))
		for i := range num {
			rs[i] = num[i] / den[i]
		}
		s, _ := statOf(rs)
		return &s
	}
	a, _ := statOf(num)
	b, _ := statOf(den)
	r := a.Median / b.Median
	return &Stat{Median: r, Min: r, Max: r, N: 1}
}

func ref(b, m string) Ref   { return Ref{Bench: b, Metric: m} }
func pref(b, m string) *Ref { r := ref(b, m); return &r }

// atMost checks the median of r against limit.
func atMost(r Ref, limit float64, unit string) func(func(Ref) (float64, bool)) (bool, string, bool) {
	return func(get func(Ref) (float64, bool)) (bool, string, bool) {
		v, ok := get(r)
		return ok && v <= limit, fmt.Sprintf("%s %s ≤ %s", fmtNum(v), unit, fmtNum(limit)), ok
	}
}

func atLeast(r Ref, limit float64, unit string) func(func(Ref) (float64, bool)) (bool, string, bool) {
	return func(get func(Ref) (float64, bool)) (bool, string, bool) {
		v, ok := get(r)
		return ok && v >= limit, fmt.Sprintf("%s %s ≥ %s", fmtNum(v), unit, fmtNum(limit)), ok
	}
}

// ratioAtLeast checks median(num)/median(den) ≥ limit.
func ratioAtLeast(num, den Ref, limit float64) func(func(Ref) (float64, bool)) (bool, string, bool) {
	return func(get func(Ref) (float64, bool)) (bool, string, bool) {
		a, ok1 := get(num)
		b, ok2 := get(den)
		if !ok1 || !ok2 || b == 0 {
			return false, "", false
		}
		return a/b >= limit, fmt.Sprintf("%.2fx ≥ %.2fx", a/b, limit), true
	}
}

// Figures is the performance table (each target as defined), in order. Load
// scenarios whose name carries their size (initial sync, hub memory) are
// read from the full-size result if d has it, else from the one present
// (a quick run's), and the row says which.
func Figures(d *Data) []Figure {
	const (
		merge   = "BenchmarkMerge/records=100/outcome=true"
		merge10 = "BenchmarkMerge/records=10000/outcome=true"
		lat     = "load:api-write-1"
		tput    = "load:api-write-32"
		catchup = "BenchmarkCatchUp"
		wireIso = "BenchmarkWireBytesPerField/isolated"
		wire100 = "BenchmarkWireBytesPerField/batch100-records"
		heal    = "BenchmarkPartitionHeal"
		prop    = "BenchmarkPropagation"
		foot    = "BenchmarkDiskFootprint"
		xfer    = "BenchmarkStateTransfer"
	)
	initial := pickBench(d, "load:initial-sync/", "load:initial-sync/records=200000")
	figs := []Figure{
		{ID: "merge", Title: "in-memory merge, single-field writes into 20-field records (100 records)", Value: ref(merge, "Mmerges/s"), Unit: "M/s",
			Target: "≥ 5 M/s per core", Check: atLeast(ref(merge, "Mmerges/s"), 5, "M/s")},
		{ID: "merge-10k", Title: "in-memory merge, 10,000 records (cache misses)", Value: ref(merge10, "Mmerges/s"), Unit: "M/s"},
		{ID: "api-write-p50", Title: "durable local write through the API, one client: p50", Value: ref(lat, "p50"),
			Baseline: pref(lat, "raw-p50"), BaselineName: "raw Pebble synced Set p50"},
		{ID: "api-write-p99", Title: "durable local write through the API, one client: p99", Value: ref(lat, "p99"),
			Baseline: pref(lat, "raw-p99"), BaselineName: "raw Pebble synced Set p99",
			Target: "p99 ≤ 2x raw + HTTP overhead p99 (HTTP alone, same run)", Cost: true,
			Check: func(get func(Ref) (float64, bool)) (bool, string, bool) {
				v, ok1 := get(ref(lat, "p99"))
				raw, ok2 := get(ref(lat, "raw-p99"))
				h, ok3 := get(ref(lat, "http-alone-p99"))
				if !ok1 || !ok2 || !ok3 {
					return false, "", false
				}
				lim := 2*raw + h
				return v <= lim, fmt.Sprintf("%s µs ≤ 2×%s + %s = %s µs", fmtNum(v), fmtNum(raw), fmtNum(h), fmtNum(lim)), true
			}},
		{ID: "api-http-overhead", Title: "HTTP overhead: the same PUTs against HTTP alone (a loopback server that only decodes the body), one client (p50)", Value: ref(lat, "http-alone-p50"), Unit: "µs"},
		{ID: "api-http-overhead-p99", Title: "HTTP overhead: the same PUTs against HTTP alone, one client (p99)", Value: ref(lat, "http-alone-p99"), Unit: "µs"},
		{ID: "api-get-p99", Title: "GET of the same records through the API, one client (p99)", Value: ref(lat, "get-p99"), Unit: "µs",
			Why: "not an allowance: a GET goes through the agent's handler and store read, so it holds more than HTTP"},
		{ID: "api-write-32", Title: "local writes per second through the API, 32 concurrent clients", Value: ref(tput, "writes/s"),
			Baseline: pref(tput, "raw-writes/s"), BaselineName: "raw Pebble synced Sets, 32 concurrent",
			Target: "≥ 50% of raw", Check: ratioAtLeast(ref(tput, "writes/s"), ref(tput, "raw-writes/s"), 0.5)},
		{ID: "api-write-32-http", Title: "the same writes against HTTP alone (a loopback server that only decodes the body), 32 concurrent", Value: ref(tput, "writes/s"),
			Baseline: pref(tput, "http-ceiling/s"), BaselineName: "requests/s HTTP alone allows, same client"},
		{ID: "http-ceiling-32", Title: "HTTP alone, 32 concurrent clients, against raw Pebble synced Sets", Value: ref(tput, "http-ceiling/s"), Unit: "requests/s",
			Baseline: pref(tput, "raw-writes/s"), BaselineName: "raw Pebble synced Sets, 32 concurrent"},
	}
	for _, n := range []int{10, 50, 200} {
		b := fmt.Sprintf("load:hub-fanin/devices=%d", n)
		f := Figure{ID: fmt.Sprintf("hub-fanin-%d", n), Title: fmt.Sprintf("hub applying writes from %d devices syncing at once", n),
			Value: ref(b, "changes/s"), Unit: "field changes/s", Baseline: pref(b, "raw-changes/s"), BaselineName: "raw Pebble batched writes, same concurrency"}
		if n == 50 {
			f.Target = "≥ 50% of raw"
			f.Check = ratioAtLeast(ref(b, "changes/s"), ref(b, "raw-changes/s"), 0.5)
		}
		figs = append(figs, f)
		figs = append(figs, Figure{ID: fmt.Sprintf("hub-fanin-%d-cpu", n), Title: fmt.Sprintf("hub CPU per field change, %d devices", n), Value: ref(b, "hub-cpu/change")})
	}
	figs = append(figs,
		Figure{ID: "catch-up", Title: "catch-up of a device that missed 1,000,000 writes, over loopback", Value: ref(catchup, "s"), Unit: "s",
			Baseline: pref(catchup, "tcp-s"), BaselineName: "the same bytes over raw loopback TCP",
			Target: "≤ 10 s", Check: atMost(ref(catchup, "s"), 10, "s"),
			Needs: func(get func(Ref) (float64, bool)) (bool, string) {
				s, _ := get(ref(catchup, "s"))
				r, _ := get(ref(catchup, "writes/s"))
				if n := s * r; n < 0.99e6 {
					return false, fmt.Sprintf("run with %.0f writes; the target is for 1,000,000 (-sync.big)", n)
				}
				return true, ""
			}},
		Figure{ID: "catch-up-pebble", Title: "catch-up: raw Pebble writing the same keys, one synced batch per chunk", Value: ref(catchup, "pebble-s"), Unit: "s"},
		Figure{ID: "state-transfer-bytes", Title: "catch-up of a new device by record states, 1,000 records × 20 fields after 101,000 writes: bytes the hub sends", Value: ref(xfer, "state-B"), Unit: "B",
			Baseline: pref(xfer, "records-B"), BaselineName: "the final records' state (each record's encoding, table and id)",
			Target: "≤ 1.2x", Check: atMost(ref(xfer, "sent/records"), 1.2, "x"), Cost: true},
		Figure{ID: "state-transfer-time", Title: "the same catch-up: time, against today's catch-up by the log", Value: ref(xfer, "state-s"), Unit: "s",
			Baseline: pref(xfer, "log-s"), BaselineName: "the same device caught up by the log (state transfer off), same run",
			Target: "no slower than the log", Check: atMost(ref(xfer, "state/log-time"), 1, "x")},
		Figure{ID: "state-transfer-log-bytes", Title: "the same catch-up by the log: bytes the hub sends", Value: ref(xfer, "log-B"), Unit: "B",
			Baseline: pref(xfer, "records-B"), BaselineName: "the final records' state"},
		Figure{ID: "wire-isolated", Title: "wire bytes per changed field beyond the value, isolated change", Value: ref(wireIso, "beyond-value-B/field"), Unit: "B",
			Baseline: pref(wireIso, "value-B/field"), BaselineName: "the value's bytes", RatioOf: pref(wireIso, "total-B/field"),
			Target: "≤ 24 B", Check: atMost(ref(wireIso, "beyond-value-B/field"), 24, "B"), Cost: true},
		Figure{ID: "wire-isolated-encoding", Title: "wire bytes per changed field beyond the value and the table, id and field names (each once), isolated change", Value: ref(wireIso, "encoding-B/field"), Unit: "B",
			Cost: true, Why: "what the encoding itself costs: the names address the change and any encoding must carry them once"},
		Figure{ID: "wire-batch100", Title: "wire bytes per changed field beyond the value, batches of 100", Value: ref(wire100, "beyond-value-B/field"), Unit: "B",
			Baseline: pref(wire100, "value-B/field"), BaselineName: "the value's bytes", RatioOf: pref(wire100, "total-B/field"),
			Target: "≤ 8 B", Check: atMost(ref(wire100, "beyond-value-B/field"), 8, "B"), Cost: true},
		Figure{ID: "wire-batch100-encoding", Title: "wire bytes per changed field beyond the value and the table, id and field names (each once), batches of 100", Value: ref(wire100, "encoding-B/field"), Unit: "B",
			Cost: true, Why: "what the encoding itself costs: the names address the change and any encoding must carry them once"},
		Figure{ID: "partition-heal", Title: "after a partition heals (1,000 changes each side), bytes sent", Value: ref(heal, "bytes-sent"), Unit: "B",
			Baseline: pref(heal, "value-bytes-changed"), BaselineName: "bytes of the fields that changed: their values",
			Target: "≤ 1.2x", Check: atMost(ref(heal, "sent/values"), 1.2, "x"), Cost: true},
		Figure{ID: "partition-heal-names", Title: "after a partition heals, bytes sent against the changed values plus each table, id and field name once", Value: ref(heal, "bytes-sent"), Unit: "B",
			Baseline: pref(heal, "value+name-bytes-changed"), BaselineName: "values and names, each name once",
			Cost: true, Why: "the least any encoding must send: the changes' values and, once each, the names that address them"},
		Figure{ID: "propagation-p99", Title: "propagation in a 50-node cluster: p99 latency", Value: ref(prop, "p99-ms"), Unit: "ms",
			Baseline: pref(prop, "gossip-p99-ms"), BaselineName: "memberlist alone: a broadcast reaching every node, p99",
			Target: "< 2 s", Check: atMost(ref(prop, "p99-ms"), 2000, "ms")},
		Figure{ID: "propagation-p50", Title: "propagation in a 50-node cluster: p50 latency", Value: ref(prop, "p50-ms"), Unit: "ms",
			Baseline: pref(prop, "gossip-p50-ms"), BaselineName: "memberlist alone: a broadcast reaching every node, p50"},
		Figure{ID: "sync-tls", Title: "catch-up of 100,000 missed writes over mutual TLS 1.3 (handshake included)", Value: ref("BenchmarkCatchUpTLS", "tls-s"), Unit: "s",
			Baseline: pref("BenchmarkCatchUpTLS", "plain-s"), BaselineName: "the same catch-up over plain loopback TCP"},
		Figure{ID: "propagation-msgs", Title: "propagation in a 50-node cluster: gossip messages per write", Value: ref(prop, "gossip-tx/write"), Unit: "messages"},
	)
	figs = append(figs, memoryFigures(pickBench(d, "load:hub-memory/", "load:hub-memory/records=1000000/devices=200"))...)
	figs = append(figs,
		Figure{ID: "initial-sync", Title: "initial sync to a new full-scope device (" + strings.TrimPrefix(initial, "load:initial-sync/") + ")", Value: ref(initial, "seconds"), Unit: "s",
			Baseline: pref(initial, "loopback-seconds"), BaselineName: "the same bytes over raw loopback TCP"},
		Figure{ID: "initial-sync-rate", Title: "initial sync: records per second", Value: ref(initial, "records/s")},
		Figure{ID: "disk-clean-stop", Title: "disk footprint after 1,000 records × 20 fields and 100,000 single-field updates and a clean stop (allocated bytes, du)", Value: ref(foot, "clean-stop-MiB"), Unit: "MiB",
			Baseline: pref(foot, "live-MiB"), BaselineName: "the same store after a full compaction",
			Target: "≤ 2x", Check: atMost(ref(foot, "clean-stop/live"), 2, "x"), Cost: true},
		Figure{ID: "disk-synced", Title: "disk footprint of a device freshly synced with the same writes, before any restart", Value: ref(foot, "synced-MiB"), Unit: "MiB",
			Baseline: pref(foot, "synced-live-MiB"), BaselineName: "that device after a full compaction",
			Target: "≤ 2x", Check: atMost(ref(foot, "synced/live"), 2, "x"), Cost: true},
		Figure{ID: "disk-compact", Title: "full online compaction of that store (replicad compact): time", Value: ref(foot, "compact-s"), Unit: "s"},
		// The store without HTTP, for context.
		Figure{ID: "store-write-p99", Title: "store alone: durable local write p99 (no HTTP)", Value: ref("BenchmarkLocalWrite/store", "p99-µs"), Unit: "µs",
			Baseline: pref("BenchmarkLocalWrite/raw-pebble", "p99-µs"), BaselineName: "raw Pebble synced Set p99"},
		Figure{ID: "store-group-commit-16", Title: "store alone: 16 concurrent durable writers", Value: ref("BenchmarkGroupCommit16/store", "writes/s"),
			Baseline: pref("BenchmarkGroupCommit16/raw-pebble", "writes/s"), BaselineName: "raw Pebble synced Sets, 16 concurrent"},
		Figure{ID: "store-apply-remote", Title: "store alone: remote writes applied in synced batches of 1,000", Value: ref("BenchmarkApplyRemote1000/store", "fieldchanges/s"),
			Baseline: pref("BenchmarkApplyRemote1000/raw-pebble", "fieldchanges/s"), BaselineName: "raw Pebble, the same batches"},
	)
	figs = append(figs, queryFigures()...)
	figs = append(figs, liveFigures()...)
	figs = append(figs, httpQueryFigures()...)
	return figs
}

// memoryFigures: the hub-memory scenario, whatever its size (the quick
// run uses fewer records and devices; the row says which).
func memoryFigures(memBench string) []Figure {
	size := strings.TrimPrefix(memBench, "load:hub-memory/")
	return []Figure{
		{ID: "hub-memory", Title: "hub resident memory at the end of the steady run (" + size + ")", Value: ref(memBench, "rss-end"), Unit: "MiB",
			Baseline: pref(memBench, "store-size"), BaselineName: "store size on disk"},
		{ID: "hub-memory-growth", Title: "hub resident memory (RSS) growth over the steady run: mean of the last quarter − mean of the second", Value: ref(memBench, "rss-growth"), Unit: "MiB",
			Baseline: pref(memBench, "rss-q2"), BaselineName: "RSS in the second quarter of the run",
			Target: "no growth: ≤ 5%",
			Check: func(get func(Ref) (float64, bool)) (bool, string, bool) {
				g, ok1 := get(ref(memBench, "rss-growth"))
				p, ok2 := get(ref(memBench, "rss-growth-pct"))
				if !ok1 || !ok2 {
					return false, "", false
				}
				return p <= 5, fmt.Sprintf("%+.1f MiB (%+.1f%%) ≤ 5%%", g, p), true
			}},
		{ID: "hub-memory-cache-growth", Title: "of which Pebble's block cache (128 MiB at most) and memtables filling (same quarters)", Value: ref(memBench, "pebble-cache-growth"), Unit: "MiB"},
		{ID: "hub-memory-record-cache-growth", Title: "of which the store's record cache (64 MiB at most) filling (same quarters)", Value: ref(memBench, "record-cache-growth"), Unit: "MiB"},
		{ID: "hub-memory-growth-beyond-caches", Title: "RSS growth beyond these bounded caches (same quarters)", Value: ref(memBench, "rss-growth-beyond-caches"), Unit: "MiB"},
		{ID: "hub-memory-heap-growth", Title: "Go heap in use: growth (same quarters)", Value: ref(memBench, "heap-growth"), Unit: "MiB"},
		{ID: "hub-memory-go-sys-growth", Title: "Go runtime memory obtained from the OS: growth (same quarters)", Value: ref(memBench, "go-sys-growth"), Unit: "MiB"},
		{ID: "hub-memory-footprint-growth", Title: "memory the hub holds (Go runtime's from the OS + Pebble's caches): growth (same quarters)", Value: ref(memBench, "footprint-growth"), Unit: "MiB",
			Baseline: pref(memBench, "footprint-q2"), BaselineName: "that memory in the second quarter of the run",
			Why: "RSS also grows as the runtime touches pages it obtained earlier; this shows whether the hub asked for more"},
		// RSS by kind (smaps) and the memory within it, same quarters:
		// which memory grew.
		{ID: "hub-memory-anon-growth", Title: "of RSS: anonymous memory (Go's, C malloc's): growth (same quarters)", Value: ref(memBench, "rss-anon-growth"), Unit: "MiB"},
		{ID: "hub-memory-file-growth", Title: "of RSS: file-backed mappings (the binary, libraries): growth (same quarters)", Value: ref(memBench, "rss-file-growth"), Unit: "MiB"},
		{ID: "hub-memory-memtables-growth", Title: "of the anonymous: resident in memtable-sized mappings (C malloc maps each of Pebble's memtables; its pages become resident as it first fills; 2 × 32 MiB at most; one merged with a neighbouring mapping is missed): growth (same quarters)", Value: ref(memBench, "rss-memtables-growth"), Unit: "MiB"},
		{ID: "hub-memory-go-held-growth", Title: "Go runtime's memory from the OS less what it released: growth (same quarters)", Value: ref(memBench, "go-held-growth"), Unit: "MiB"},
		{ID: "hub-memory-malloc-inuse-growth", Title: "C malloc's memory in use in its arenas (Pebble's block cache): growth (same quarters)", Value: ref(memBench, "c-malloc-inuse-growth"), Unit: "MiB"},
		{ID: "hub-memory-malloc-free-growth", Title: "C malloc's free memory in its arenas (resident until trimmed): growth (same quarters)", Value: ref(memBench, "c-malloc-free-growth"), Unit: "MiB"},
		{ID: "hub-heap-slope", Title: "hub Go heap in use: slope over the steady run", Value: ref(memBench, "heap-slope"), Unit: "MiB/min"},
		{ID: "hub-memory-slope", Title: "hub memory slope over the steady run", Value: ref(memBench, "rss-slope"), Unit: "MiB/min"},
	}
}

// pickBench returns preferred if d has samples of it, else the first
// (sorted) benchmark with prefix, else preferred.
func pickBench(d *Data, prefix, preferred string) string {
	var found []string
	for r := range d.Samples {
		if r.Bench == preferred {
			return preferred
		}
		if strings.HasPrefix(r.Bench, prefix) {
			found = append(found, r.Bench)
		}
	}
	if len(found) == 0 {
		return preferred
	}
	slices.Sort(found)
	return found[0]
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "–"
	case a == 0:
		return "0"
	case a >= 100_000:
		return fmt.Sprintf("%.3g", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
