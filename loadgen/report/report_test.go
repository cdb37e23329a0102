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
BenchmarkWireBytesPerField/isolated-2 	 100	 5000 ns/op	 23.00 overhead-B/field	 40.00 payload-B/field	 63.00 total-B/field
BenchmarkPartitionHeal-2 	 1	 1 ns/op	 1.1 sent/changed	 110000 bytes-sent	 100000 bytes-changed
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
	lat.Add("http-p99", "µs", 50)
	mem := loadgen.Result{Name: "hub-memory/records=100000/devices=50"}
	mem.Add("rss-end", "MiB", 250)
	mem.Add("store-size", "MiB", 25)
	mem.Add("rss-growth", "MiB", 40)
	mem.Add("rss-growth-pct", "%", 9)
	mem.Add("pebble-cache-growth", "MiB", 43)
	mem.Add("rss-growth-beyond-caches", "MiB", -3)
	mem.Add("rss-growth-beyond-caches-pct", "%", -1.2)
	mem.Add("footprint-start", "MiB", 400)
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
	if err != nil || n != 6 {
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
	// p99 900 ≤ 2×400 + 50 = 850? No: missed.
	if r := rowByID(t, rows, "api-write-p99"); r.Status != "missed" || !strings.Contains(r.Note, "850") {
		t.Fatalf("p99 %+v", r)
	}
	// The catch-up ran 80000×12.5 = 1,000,000 writes: 12.5 s > 10 s.
	if r := rowByID(t, rows, "catch-up"); r.Status != "missed" || r.Ratio.Median != 25 {
		t.Fatalf("catch-up %+v", r)
	}
	if r := rowByID(t, rows, "wire-isolated"); r.Status != "met" || r.Ratio.Median != 63.0/40 {
		t.Fatalf("wire %+v", r)
	}
	if r := rowByID(t, rows, "partition-heal"); r.Status != "met" || r.Ratio.Median != 1.1 {
		t.Fatalf("heal %+v", r)
	}
	// The quick hub-memory result stands in for the full one, and says so.
	if r := rowByID(t, rows, "hub-memory"); r.Status != "reported" || r.Ratio.Median != 10 || !strings.Contains(r.Title, "records=100000") {
		t.Fatalf("memory %+v", r)
	}
	// RSS grew 40 MiB (reported), all of it Pebble's bounded caches
	// filling; the memory held grew 2 MiB: the target met.
	if r := rowByID(t, rows, "hub-memory-growth"); r.Status != "reported" || r.Value.Median != 40 {
		t.Fatalf("growth %+v", r)
	}
	if r := rowByID(t, rows, "hub-memory-growth-beyond-caches"); r.Status != "reported" || r.Value.Median != -3 {
		t.Fatalf("growth beyond caches %+v", r)
	}
	if r := rowByID(t, rows, "hub-memory-footprint-growth"); r.Status != "met" || !strings.Contains(r.Note, "+2.0 MiB") {
		t.Fatalf("footprint growth %+v", r)
	}
	if r := rowByID(t, rows, "hub-fanin-50"); r.Status != "missing" {
		t.Fatalf("fanin without data: %+v", r)
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
