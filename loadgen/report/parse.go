package report

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/replicad/replicad/loadgen"
)

// Ref names a set of samples: a benchmark (a Go benchmark's name without
// its -GOMAXPROCS suffix, or a load result's name prefixed "load:") and a
// metric (a Go benchmark's unit, or a load metric's name).
type Ref struct {
	Bench  string `json:"bench"`
	Metric string `json:"metric"`
}

// Data holds every sample read, by Ref, and where they came from.
type Data struct {
	Samples map[Ref][]float64
	Units   map[Ref]string
	Params  map[string]map[string]any // load result name → params
	Sources []string
	Host    *loadgen.Host
}

// NewData returns empty Data.
func NewData() *Data {
	return &Data{Samples: map[Ref][]float64{}, Units: map[Ref]string{}, Params: map[string]map[string]any{}}
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// AddGoBench reads `go test -bench` output: every result line is one
// sample of each of its metrics. It returns the number of result lines.
func (d *Data) AddGoBench(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		ok := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			ref := Ref{Bench: name, Metric: f[i+1]}
			d.Samples[ref] = append(d.Samples[ref], v)
			d.Units[ref] = f[i+1]
			ok = true
		}
		if ok {
			n++
		}
	}
	return n, sc.Err()
}

// AddLoad adds a load tool document: each metric's samples under
// Ref{"load:"+result name, metric name}.
func (d *Data) AddLoad(doc *loadgen.Doc) {
	if d.Host == nil {
		h := doc.Host
		d.Host = &h
	}
	for _, r := range doc.Results {
		d.Params["load:"+r.Name] = r.Params
		for _, m := range r.Metrics {
			ref := Ref{Bench: "load:" + r.Name, Metric: m.Name}
			d.Samples[ref] = append(d.Samples[ref], m.Samples...)
			d.Units[ref] = m.Unit
		}
	}
}
