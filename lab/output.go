package lab

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// csvHeader is the columns of runs.csv and of each run's CSV.
var csvHeader = []string{
	"scenario", "strategy", "seed", "sweep_name", "sweep_value",
	"writes", "deletes", "field_writes", "lost_updates", "conflicts", "resolutions",
	"rejected", "sync_errors", "decisions", "tentative", "parked",
	"converged", "convergence_ms", "end_ms", "sessions", "sessions_cut", "messages", "bytes",
	"bytes_per_write", "staleness_mean_ms", "staleness_max_ms", "device_hours",
}

func csvRow(r *RunResult) []string {
	m := &r.Metrics
	sweepName, sweepValue := "", ""
	if r.Sweep != nil {
		sweepName, sweepValue = r.Sweep.Name, fmtF(r.Sweep.Value)
	}
	i := strconv.Itoa
	i64 := func(x int64) string { return strconv.FormatInt(x, 10) }
	return []string{
		r.Scenario, r.Strategy, strconv.FormatUint(r.Seed, 10), sweepName, sweepValue,
		i(m.Writes), i(m.Deletes), i(m.FieldWrites), i(m.LostUpdates), i(m.Conflicts), i(m.Resolutions),
		i(m.Rejected), i(m.SyncErrors), i(m.Decisions), i(m.Tentative), i(m.Parked),
		strconv.FormatBool(m.Converged), i64(m.ConvergenceMs), i64(m.EndMs), i(m.Sessions), i(m.SessionsCut),
		i64(m.Messages), i64(m.Bytes), fmtF(m.BytesPerWrite), fmtF(m.StalenessMeanMs), i64(m.StalenessMaxMs),
		fmtF(m.DeviceHours),
	}
}

func fmtF(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// EncodeCSV writes runs as CSV with a header.
func EncodeCSV(runs []*RunResult) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(csvHeader)
	for _, r := range runs {
		w.Write(csvRow(r))
	}
	w.Flush()
	return b.Bytes()
}

func encodeJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic("lab: json: " + err.Error())
	}
	return append(b, '\n')
}

// runName names a run's files: strategy, sweep value, seed.
func runName(r *RunResult) string {
	name := r.Strategy
	if r.Sweep != nil {
		name += "-" + r.Sweep.Name + "=" + fmtF(r.Sweep.Value)
	}
	return fmt.Sprintf("%s-seed%d", name, r.Seed)
}

// Output is everything a lab run writes, by relative path.
type Output map[string][]byte

// Render builds every output file of a scenario's results: per run CSV
// and JSON (runs/), all runs (runs.csv, runs.json), the summary across
// seeds (summary.csv, summary.json, summary.md), the plots (PNG and
// SVG) and report.md.
func Render(scs []*Scenario, runs []*RunResult) (Output, error) {
	out := Output{}
	for _, r := range runs {
		base := "runs/" + runName(r)
		out[base+".json"] = encodeJSON(r)
		out[base+".csv"] = EncodeCSV([]*RunResult{r})
	}
	out["runs.csv"] = EncodeCSV(runs)
	out["runs.json"] = encodeJSON(runs)
	rows := Summarize(runs)
	out["summary.json"] = encodeJSON(rows)
	out["summary.csv"] = summaryCSV(rows)
	table := SummaryTable(rows)
	out["summary.md"] = []byte(table)
	plots, err := Plots(scs[0], rows)
	if err != nil {
		return nil, err
	}
	for k, v := range plots {
		out[k] = v
	}
	out["report.md"] = []byte(report(scs, runs, rows, plots))
	return out, nil
}

// Write puts every file of out under dir.
func (out Output) Write(dir string) error {
	for name, data := range out {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func summaryCSV(rows []SummaryRow) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"strategy", "sweep", "runs", "not_converged"}
	for _, m := range summaryMetrics {
		head = append(head, m.key+"_mean", m.key+"_sd", m.key+"_min", m.key+"_max")
	}
	w.Write(head)
	for _, r := range rows {
		sw := ""
		if r.Sweep != nil {
			sw = fmtF(*r.Sweep)
		}
		rec := []string{r.Strategy, sw, strconv.Itoa(r.Runs), strconv.Itoa(r.NotConverged)}
		for _, m := range summaryMetrics {
			s := m.get(&r)
			rec = append(rec, fmtF(s.Mean), fmtF(s.SD), fmtF(s.Min), fmtF(s.Max))
		}
		w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}

var summaryMetrics = []struct {
	key, title string
	get        func(*SummaryRow) Stat
}{
	{"writes", "writes", func(r *SummaryRow) Stat { return r.Writes }},
	{"lost_updates", "lost updates", func(r *SummaryRow) Stat { return r.LostUpdates }},
	{"conflicts", "conflicts shown", func(r *SummaryRow) Stat { return r.Conflicts }},
	{"rejected", "rejected", func(r *SummaryRow) Stat { return r.Rejected }},
	{"tentative", "tentative at end", func(r *SummaryRow) Stat { return r.Tentative }},
	{"convergence_s", "convergence (s)", func(r *SummaryRow) Stat { return r.ConvergenceS }},
	{"messages", "messages", func(r *SummaryRow) Stat { return r.Messages }},
	{"bytes_per_write", "bytes/write", func(r *SummaryRow) Stat { return r.BytesPerWrite }},
	{"staleness_s", "staleness (s)", func(r *SummaryRow) Stat { return r.StalenessS }},
}

// SummaryTable is the summary as a Markdown table: mean ± standard
// deviation over seeds.
func SummaryTable(rows []SummaryRow) string {
	var b strings.Builder
	sweep := len(rows) > 0 && rows[0].Sweep != nil
	b.WriteString("| strategy |")
	if sweep {
		b.WriteString(" sweep |")
	}
	for _, m := range summaryMetrics {
		b.WriteString(" " + m.title + " |")
	}
	b.WriteString("\n|---|")
	if sweep {
		b.WriteString("---:|")
	}
	for range summaryMetrics {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		name := r.Strategy
		if r.NotConverged > 0 {
			name += fmt.Sprintf(" (%d/%d not converged)", r.NotConverged, r.Runs)
		}
		b.WriteString("| " + name + " |")
		if sweep {
			b.WriteString(" " + fmtF(*r.Sweep) + " |")
		}
		for _, m := range summaryMetrics {
			b.WriteString(" " + m.get(&r).String() + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
