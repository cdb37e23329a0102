package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/replicad/replicad/loadgen"
	"github.com/spf13/pflag"
)

// Report is report.json.
type Report struct {
	Generated time.Time     `json:"generated"`
	Host      *loadgen.Host `json:"host,omitempty"`
	Sources   []string      `json:"sources"`
	Rows      []Row         `json:"figures"`
	// All is every sample set read (medians and spread), the figures'
	// and the rest.
	All []Series `json:"all"`
}

// Series is one sample set.
type Series struct {
	Ref
	Unit string `json:"unit"`
	Stat
}

// Build computes the report over d.
func Build(d *Data) *Report {
	r := &Report{Generated: time.Now().UTC(), Host: d.Host, Sources: d.Sources, Rows: Compute(d, Figures(d))}
	for ref, xs := range d.Samples {
		s, _ := statOf(xs)
		r.All = append(r.All, Series{Ref: ref, Unit: d.Units[ref], Stat: s})
	}
	slices.SortFunc(r.All, func(a, b Series) int {
		if c := strings.Compare(a.Bench, b.Bench); c != 0 {
			return c
		}
		return strings.Compare(a.Metric, b.Metric)
	})
	return r
}

func spread(s *Stat) string {
	if s == nil {
		return "–"
	}
	if s.N <= 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s, n=%d)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max), s.N)
}

var statusMark = map[string]string{"met": "✅ met", "missed": "❌ missed", "reported": "reported", "n/a": "n/a", "missing": "⚠ missing", "invalid": "⚠ invalid"}

// Markdown renders the figures table, then every sample set.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# replicad performance report\n\nGenerated %s", r.Generated.Format(time.RFC3339))
	if r.Host != nil {
		fmt.Fprintf(w, " on %d CPUs, %s, %s", r.Host.CPUs, r.Host.OS, r.Host.GoVersion)
		if len(r.Host.LoadAvg) > 0 {
			fmt.Fprintf(w, " (load average at the start and end of the load scenarios: %s: the machine is shared, so read ratios to same-run baselines, not absolute figures)", strings.Join(r.Host.LoadAvg, "; "))
		}
	}
	fmt.Fprintf(w, ". Sources: %s.\n\n", strings.Join(r.Sources, ", "))
	fmt.Fprintln(w, "Each value is the median over the runs, with the range and the number of runs; the baseline was measured in the same run on the same disk or loopback; the ratio is value ÷ baseline, paired run by run where both have as many runs.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| figure | value | baseline | ratio | target | status |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, row := range r.Rows {
		val := spread(row.Value)
		if row.Value != nil && row.Unit != "" {
			val += " " + row.Unit
		}
		base := "–"
		if row.Baseline != nil {
			base = spread(row.Baseline) + " (" + row.BaselineName + ")"
		} else if row.BaselineName != "" {
			base = "missing (" + row.BaselineName + ")"
		}
		ratio := "–"
		if row.Ratio != nil {
			ratio = spread(row.Ratio) + "x"
		}
		status := statusMark[row.Status]
		if row.Note != "" {
			status += ": " + row.Note
		}
		target := row.Target
		if target == "" {
			target = "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(row.Title), esc(val), esc(base), esc(ratio), esc(target), esc(status))
	}
	fmt.Fprintln(w, "\n## Every measurement\n\n| benchmark | metric | median | min | max | runs |\n|---|---|---|---|---|---|")
	for _, s := range r.All {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d |\n", esc(s.Bench), esc(s.Metric), fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max), s.N)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Main runs `replicad bench report ARGS`.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("replicad bench report", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	goFiles := fs.StringArray("go", nil, "`go test -bench` output to read (repeatable)")
	loadFiles := fs.StringArray("load", nil, "`replicad bench` JSON to read (repeatable)")
	out := fs.String("out", "bench-results", "write report.md and report.json into this directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: replicad bench report --go FILE... --load FILE... [--out DIR]\n\nWrites DIR/report.md and DIR/report.json: each figure of the performance table with its\nmedian and spread, its baseline from the same run, the ratio and the target.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(*goFiles)+len(*loadFiles) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	d := NewData()
	for _, f := range *goFiles {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(stderr, "replicad bench report: "+err.Error())
			return 1
		}
		n, err := d.AddGoBench(fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(stderr, "replicad bench report: %s: %v\n", f, err)
			return 1
		}
		if n == 0 {
			fmt.Fprintf(stderr, "replicad bench report: %s: no benchmark results\n", f)
		}
		d.Sources = append(d.Sources, filepath.Base(f))
	}
	for _, f := range *loadFiles {
		doc, err := loadgen.ReadDoc(f)
		if err != nil {
			fmt.Fprintln(stderr, "replicad bench report: "+err.Error())
			return 1
		}
		d.AddLoad(doc)
		d.Sources = append(d.Sources, filepath.Base(f))
	}
	r := Build(d)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "replicad bench report: "+err.Error())
		return 1
	}
	var md strings.Builder
	r.Markdown(&md)
	js, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "report.md"), []byte(md.String()), 0o644); err != nil {
		fmt.Fprintln(stderr, "replicad bench report: "+err.Error())
		return 1
	}
	if err := os.WriteFile(filepath.Join(*out, "report.json"), append(js, '\n'), 0o644); err != nil {
		fmt.Fprintln(stderr, "replicad bench report: "+err.Error())
		return 1
	}
	table, _, _ := strings.Cut(md.String(), "\n## Every measurement")
	fmt.Fprint(stdout, table)
	fmt.Fprintf(stdout, "\nreport: %s, %s\n", filepath.Join(*out, "report.md"), filepath.Join(*out, "report.json"))
	return 0
}
