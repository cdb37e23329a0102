package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Doc is what `replicad bench` writes: one Result per scenario run.
type Doc struct {
	Version int       `json:"version"`
	Started time.Time `json:"started"`
	Host    Host      `json:"host"`
	Results []Result  `json:"results"`
}

// Host describes the machine the figures were taken on.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15-minute load averages when
	// the run started and when it ended: on a shared machine, how much
	// else was running.
	LoadAvg []string `json:"loadavg,omitempty"`
}

func thisHost() Host {
	return Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvg: []string{loadAvg()}}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Result is one scenario's figures. Name identifies it in the report
// (e.g. "hub-fanin/devices=50").
type Result struct {
	Name    string         `json:"name"`
	Params  map[string]any `json:"params,omitempty"`
	Metrics []Metric       `json:"metrics"`
	Seconds float64        `json:"seconds"`
}

// Metric is one figure: Value is the median of Samples (one per run).
type Metric struct {
	Name    string    `json:"name"`
	Unit    string    `json:"unit"`
	Value   float64   `json:"value"`
	Samples []float64 `json:"samples"`
}

// Add records one sample of the metric name (created on first use) and
// updates its median.
func (r *Result) Add(name, unit string, v float64) {
	for i := range r.Metrics {
		if r.Metrics[i].Name == name {
			r.Metrics[i].Samples = append(r.Metrics[i].Samples, v)
			r.Metrics[i].Value = Median(r.Metrics[i].Samples)
			return
		}
	}
	r.Metrics = append(r.Metrics, Metric{Name: name, Unit: unit, Value: v, Samples: []float64{v}})
}

// Get returns the metric name.
func (r *Result) Get(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// Median of xs (NaN for none); xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// WriteDoc writes d as indented JSON to path.
func WriteDoc(path string, d *Doc) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadDoc reads a Doc written by WriteDoc.
func ReadDoc(path string) (*Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d", path, d.Version)
	}
	return &d, nil
}
