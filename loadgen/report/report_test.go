package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/loadgen"
)

const goOut = `goos: linux
pkg: github.com/replicad/replicad/crdt
BenchmarkMerge/records=100/outcome=true-2   	 4830144	       175.7 ns/op	         5.737 Mmerges/s	       3 B/op	       0 allocs/op
BenchmarkMerge/records=100/outcome=true-2   	 4830144	       185.7 ns/op	         5.337 Mmerges/s	       3 B/op	       0 allocs/op
BenchmarkMerge/records=100/outcome=true-2   	 4830144	       275.7 ns/op	         3.637 Mmerges/s	       3 B/op	       0 allocs/op
PASS
pkg: github.com/replicad/replicad/replication
BenchmarkCatchUp-2   	       1	13000000000 ns/op	 80000 writes/s	 12.5 s	 0.5 tcp-s	 3.0 pebble-s
BenchmarkWireBytesPerField/isolated-2 	 100	 5000 ns/op	 50.00 beyond-value-B/field	 24.00 encoding-B/field	 55.00 total-B/field	 5.000 value-B/field
BenchmarkWireBytesPerField/batch100-records-2 	 100	 5000 ns/op	 -9.42 beyond-value-B/field	 7.19 encoding-B/field	 34.10 total-B/field	 17.50 value-B/field
BenchmarkPartitionHeal-2 	 1	 1 ns/op	 1.86 sent/values	 1.5 sent/values+names	 186000 bytes-sent	 100000 value-bytes-changed	 124000 value+name-bytes-changed
BenchmarkDiskFootprint-2 	 1	 1 ns/op	 1.2 clean-stop/live	 2.5 synced/live	 12 clean-stop-MiB	 10 live-MiB	 25 synced-MiB	 10 synced-live-MiB	 1 compact-s
some unrelated line
BenchmarkBroken-2 	 notanumber
ok  	github.com/replicad/replicad/replication	20.0s
`

func loadDoc() *loadgen.Doc {
	d := &loadgen.Doc{Version: 1}
	tput := loadgen.Result{Name: "api-write-32"}
	for _, v := range [][2]float64{{1000, 4000}, {1200, 4000}, {900, 1000}} {
		tput.Add("writes/s", "writes/s", v[0])
		tput.Add("raw-writes/s", "writes/s", v[1])
	}
	lat := loadgen.Result{Name: "api-write-1"}
	lat.Add("p99", "µs", 900)
	lat.Add("raw-p99", "µs", 400)
	lat.Add("http-alone-p99", "µs", 50)
	lat.Add("get-p99", "µs", 600)
	mem := loadgen.Result{Name: "hub-memory/records=100000/devices=50"}
	mem.Add("rss-end", "MiB", 250)
	mem.Add("store-size", "MiB", 25)
	mem.Add("rss-q2", "MiB", 200)
	mem.Add("rss-q4", "MiB", 240)
	mem.Add("rss-growth", "MiB", 40)
	mem.Add("rss-growth-pct", "%", 20)
	mem.Add("pebble-cache-growth", "MiB", 43)
	mem.Add("rss-growth-beyond-caches", "MiB", -3)
	mem.Add("footprint-q2", "MiB", 400)
	mem.Add("footprint-growth", "MiB", 2)
	mem.Add("footprint-growth-pct", "%", 0.5)
	d.Results = []loadgen.Result{tput, lat, mem}
	return d
}

func rowByID(t *testing.T, rows []Row, id string) Row {
	t.Helper()
	for _, r := range rows {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no row %s", id)
	return Row{}
}

func TestCompute(t *testing.T) {
	d := NewData()
	n, err := d.AddGoBench(strings.NewReader(goOut))
	if err != nil || n != 8 {
		t.Fatalf("%d result lines, %v", n, err)
	}
	if xs := d.Samples[Ref{"BenchmarkMerge/records=100/outcome=true", "Mmerges/s"}]; len(xs) != 3 {
		t.Fatalf("merge samples %v", xs)
	}
	d.AddLoad(loadDoc())
	rows := Compute(d, Figures(d))

	// Median of 3 runs (5.337), spread 3.637-5.737: the 5 M/s target met.
	m := rowByID(t, rows, "merge")
	if m.Status != "met" || m.Value.Median != 5.337 || m.Value.Min != 3.637 || m.Value.N != 3 {
		t.Fatalf("merge %+v %+v", m, m.Value)
	}
	// Paired run by run: ratios 0.25, 0.3, 0.9 -> median 0.3; the target
	// is on the medians' ratio: 1000/4000 = 0.25 < 0.5.
	tp := rowByID(t, rows, "api-write-32")
	if tp.Status != "missed" || tp.Ratio.Median != 0.3 || tp.Ratio.N != 3 || tp.Baseline.Median != 4000 {
		t.Fatalf("throughput %+v ratio %+v", tp, tp.Ratio)
	}
	// p99 900 ≤ 2×400 + 50 (HTTP alone's p99, not the 600 µs GETs
	// through the agent) = 850? No: missed.
	if r := rowByID(t, rows, "api-write-p99"); r.Status != "missed" || !strings.Contains(r.Note, "850") {
		t.Fatalf("p99 %+v", r)
	}
	// The catch-up ran 80000×12.5 = 1,000,000 writes: 12.5 s > 10 s.
	if r := rowByID(t, rows, "catch-up"); r.Status != "missed" || r.Ratio.Median != 25 {
		t.Fatalf("catch-up %+v", r)
	}
	// Beyond the value: 50 B > 24 B, missed; the encoding alone (names
	// once) is reported beside it, with why.
	if r := rowByID(t, rows, "wire-isolated"); r.Status != "missed" || r.Ratio.Median != 55.0/5 {
		t.Fatalf("wire %+v", r)
	}
	if r := rowByID(t, rows, "wire-isolated-encoding"); r.Status != "reported" || r.Value.Median != 24 || r.Note == "" {
		t.Fatalf("wire encoding %+v", r)
	}
	// A negative cost is never met: the measurement is wrong.
	if r := rowByID(t, rows, "wire-batch100"); r.Status != "invalid" || !strings.Contains(r.Note, "-9.42") {
		t.Fatalf("negative wire overhead %+v", r)
	}
	if r := rowByID(t, rows, "partition-heal"); r.Status != "missed" || r.Ratio.Median != 1.86 || r.Baseline.Median != 100000 {
		t.Fatalf("heal %+v", r)
	}
	if r := rowByID(t, rows, "partition-heal-names"); r.Status != "reported" || r.Ratio.Median != 1.5 {
		t.Fatalf("heal with names %+v", r)
	}
	// The quick hub-memory result stands in for the full one, and says so.
	if r := rowByID(t, rows, "hub-memory"); r.Status != "reported" || r.Ratio.Median != 10 || !strings.Contains(r.Title, "records=100000") {
		t.Fatalf("memory %+v", r)
	}
	// RSS grew 20% from the second quarter to the last: missed, although
	// the memory the hub holds grew 0.5% (reported beside it).
	if r := rowByID(t, rows, "hub-memory-growth"); r.Status != "missed" || r.Value.Median != 40 || !strings.Contains(r.Note, "+20.0%") {
		t.Fatalf("growth %+v", r)
	}
	if r := rowByID(t, rows, "hub-memory-growth-beyond-caches"); r.Status != "reported" || r.Value.Median != -3 {
		t.Fatalf("growth beyond caches %+v", r)
	}
	if r := rowByID(t, rows, "hub-memory-footprint-growth"); r.Status != "reported" || r.Note == "" {
		t.Fatalf("footprint growth %+v", r)
	}
	// Disk footprint: judged on the ratios to the compacted store.
	if r := rowByID(t, rows, "disk-clean-stop"); r.Status != "met" || r.Ratio.Median != 1.2 {
		t.Fatalf("disk clean stop %+v", r)
	}
	if r := rowByID(t, rows, "disk-synced"); r.Status != "missed" || r.Ratio.Median != 2.5 {
		t.Fatalf("disk synced %+v", r)
	}
	if r := rowByID(t, rows, "hub-fanin-50"); r.Status != "missing" {
		t.Fatalf("fanin without data: %+v", r)
	}
}

// TestCostNeverNegative: a row measuring a cost with a negative sample is
// "invalid", never "met", whatever its target; and every judged row on
// bytes or latency beyond a baseline is marked as a cost.
func TestCostNeverNegative(t *testing.T) {
	d := NewData()
	d.AddGoBench(strings.NewReader("BenchmarkX-2 1 1 ns/op -1 over-B 3 over-B-ok\nBenchmarkX-2 1 1 ns/op 2 over-B 3 over-B-ok\nBenchmarkX-2 1 1 ns/op 2 over-B 3 over-B-ok\n"))
	figs := []Figure{
		{ID: "neg", Value: ref("BenchmarkX", "over-B"), Cost: true, Target: "≤ 8 B", Check: atMost(ref("BenchmarkX", "over-B"), 8, "B")},
		{ID: "neg-reported", Value: ref("BenchmarkX", "over-B"), Cost: true},
		{ID: "ok", Value: ref("BenchmarkX", "over-B-ok"), Cost: true, Target: "≤ 8 B", Check: atMost(ref("BenchmarkX", "over-B-ok"), 8, "B")},
	}
	rows := Compute(d, figs)
	// The median (2) would meet the target; one negative run voids it.
	if r := rowByID(t, rows, "neg"); r.Status != "invalid" {
		t.Fatalf("negative cost: %+v", r)
	}
	if r := rowByID(t, rows, "neg-reported"); r.Status != "invalid" {
		t.Fatalf("negative cost, reported row: %+v", r)
	}
	if r := rowByID(t, rows, "ok"); r.Status != "met" {
		t.Fatalf("positive cost: %+v", r)
	}
	for _, f := range Figures(NewData()) {
		switch f.ID {
		case "api-write-p99", "wire-isolated", "wire-batch100", "wire-isolated-encoding", "wire-batch100-encoding", "partition-heal", "partition-heal-names":
			if !f.Cost {
				t.Errorf("figure %s measures a cost but is not marked Cost", f.ID)
			}
		}
	}
}

// TestMemoryVerdictOnRSSQuarters: the no-growth target judges RSS, the
// second quarter's mean against the last's, at 5%.
func TestMemoryVerdictOnRSSQuarters(t *testing.T) {
	for _, c := range []struct {
		q2, q4 float64
		want   string
	}{{400, 419, "met"}, {400, 420, "met"}, {400, 421, "missed"}, {400, 380, "met"}} {
		d := NewData()
		mem := loadgen.Result{Name: "hub-memory/records=1000000/devices=200"}
		mem.Add("rss-q2", "MiB", c.q2)
		mem.Add("rss-growth", "MiB", c.q4-c.q2)
		mem.Add("rss-growth-pct", "%", 100*(c.q4-c.q2)/c.q2)
		// What the hub asked for did not grow: it does not decide.
		mem.Add("footprint-growth", "MiB", 0)
		mem.Add("footprint-growth-pct", "%", 0)
		d.AddLoad(&loadgen.Doc{Version: 1, Results: []loadgen.Result{mem}})
		if r := rowByID(t, Compute(d, Figures(d)), "hub-memory-growth"); r.Status != c.want {
			t.Errorf("RSS %v → %v MiB: %s (%s), want %s", c.q2, c.q4, r.Status, r.Note, c.want)
		}
	}
}

func TestCatchUpTargetNeedsTheBigRun(t *testing.T) {
	d := NewData()
	d.AddGoBench(strings.NewReader("BenchmarkCatchUp-2 1 1 ns/op 50000 writes/s 2 s 0.1 tcp-s\n"))
	if r := rowByID(t, Compute(d, Figures(d)), "catch-up"); r.Status != "n/a" || !strings.Contains(r.Note, "100000") {
		t.Fatalf("%+v", r)
	}
}

func TestMain(t *testing.T) {
	dir := t.TempDir()
	gf := filepath.Join(dir, "go.txt")
	os.WriteFile(gf, []byte(goOut), 0o644)
	lf := filepath.Join(dir, "load.json")
	if err := loadgen.WriteDoc(lf, loadDoc()); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"--go", gf, "--load", lf, "--out", filepath.Join(dir, "r")}, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "r", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| figure | value | baseline | ratio | target | status |", "5.34 (3.64–5.74, n=3) M/s", "❌ missed", "## Every measurement"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("report.md lacks %q:\n%s", want, md)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "r", "report.json")); err != nil {
		t.Fatal(err)
	}
	if code := Main(nil, &out, &errb); code != 2 {
		t.Fatalf("no input: code %d", code)
	}
}
