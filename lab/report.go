package lab

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// report is the Markdown report of a scenario's results: what was run,
// the summary table, the plots, and what the numbers mean.
func report(scs []*Scenario, runs []*RunResult, rows []SummaryRow, plots map[string][]byte) string {
	sc := scs[0]
	var b strings.Builder
	fmt.Fprintf(&b, "# Lab report: %s\n\n", sc.Name)
	if sc.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", sc.Description)
	}
	devices := nodeCount(sc.Devices)
	dur := fmtDur(sc.Duration)
	if last := scs[len(scs)-1]; last.Duration != sc.Duration {
		dur = "from " + fmtDur(sc.Duration) + " to " + fmtDur(last.Duration)
	}
	fmt.Fprintf(&b, "Scenario file `%s`: %s, %s, topology %s, %s of workload (then at most %s to converge), table `%s` with %s and %s.\n",
		sc.File, plural(len(sc.Hubs), "hub", "hubs"), plural(devices, "device", "devices"), sc.Topology, dur, fmtDur(sc.Settle),
		sc.Table, plural(sc.Records, "record", "records"), plural(len(sc.Fields), "field", "fields"))
	fmt.Fprintf(&b, "Network: %s latency", fmtDur(sc.Net.Delay))
	if sc.Net.Jitter > 0 {
		fmt.Fprintf(&b, " + up to %s jitter", fmtDur(sc.Net.Jitter))
	}
	if sc.Net.BandwidthKbps > 0 {
		fmt.Fprintf(&b, ", %s kbit/s", fmtF(sc.Net.BandwidthKbps))
	}
	if sc.Net.Loss > 0 {
		fmt.Fprintf(&b, ", %s%% of messages lost (each cuts its session)", fmtF(sc.Net.Loss*100))
	}
	if sc.Net.SyncInterval > 0 {
		fmt.Fprintf(&b, ", pull every %s", fmtDur(sc.Net.SyncInterval))
	}
	if sc.Net.Push {
		b.WriteString(", push on every write")
	}
	b.WriteString(".\n")
	seeds := map[uint64]bool{}
	strats := map[string]bool{}
	for _, r := range runs {
		seeds[r.Seed] = true
		strats[r.Strategy] = true
	}
	fmt.Fprintf(&b, "%s: %s × %s", plural(len(runs), "run", "runs"), plural(len(strats), "strategy", "strategies"), plural(len(seeds), "seed", "seeds"))
	if sc.Sweep != nil {
		fmt.Fprintf(&b, " × %d values of %s", len(scs), sc.Sweep.Label)
	}
	b.WriteString("; the workload of a seed is the same for every strategy.\n\n")

	b.WriteString("## Summary\n\nMean ± standard deviation over seeds (a single number: the same in every run).\n\n")
	b.WriteString(SummaryTable(rows))
	b.WriteString("\n")

	if small(runs) {
		seed := runs[0].Seed
		fmt.Fprintf(&b, "## Final state (seed %d)\n\nWhat the reference replica (the first hub, else the first device) shows at the end.\n\n| strategy | record | fields | shown side by side |\n|---|---|---|---|\n", seed)
		for _, r := range runs {
			if r.Seed != seed {
				continue
			}
			keys := make([]string, 0, len(r.Final))
			for k := range r.Final {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := r.Final[k]
				fields := "(deleted)"
				if v.Exists {
					fields = inline(v.Fields)
				}
				conf := ""
				if len(v.Conflicts) > 0 {
					names := make([]string, 0, len(v.Conflicts))
					for f := range v.Conflicts {
						names = append(names, f)
					}
					sort.Strings(names)
					for _, f := range names {
						conf += f + ": " + strings.Join(v.Conflicts[f], " / ") + "; "
					}
					conf = strings.TrimSuffix(conf, "; ")
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Strategy, k, fields, conf)
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("## Plots\n\nEach value is the mean over seeds; its error bar runs from the least to the greatest run.\n\n")
	for _, p := range []struct{ name, caption string }{
		{PlotLostConflicts, "Lost updates, conflicts shown to a person and rejected changes per strategy."},
		{PlotConvergence, "Time from the last disturbance (a write, a device back online, a partition healed) until every replica holds every write."},
		{PlotLostSweep, "Lost updates, rejected changes and conflicts shown as the swept parameter grows (series that stay at zero are left out)."},
		{PlotBytesPerWrite, "Bytes on the wire (replication messages with their frames) per write made."},
	} {
		if _, ok := plots["plots/"+p.name+".png"]; ok {
			fmt.Fprintf(&b, "![%s](plots/%s.png)\n\n%s ([SVG](plots/%s.svg))\n\n", p.name, p.name, p.caption, p.name)
		}
	}

	b.WriteString(`## What the numbers mean

- **lost updates**: values written by a person that end neither shown, nor
  replaced by a person who had seen them, nor shown side by side as a
  conflict, nor rejected with a sync error: overwritten by a write that had
  not seen them. One per field a write set (a delete counts once).
- **conflicts shown**: distinct sets of concurrent values of one field (or a
  delete against an update) that some replica showed side by side: to a
  person under manual, to the reading application under multi-value.
- **rejected**: changes the hub undid (server-wins), each logged as a sync
  error the device can retry.
- **tentative at end**: changes of an arbitrated policy that no hub had
  judged (no hub reachable): they stay pending.
- **convergence**: from the last disturbance until every replica held every
  write and the hub had made every decision.
- **bytes/write**: every replication message (framed, as on the wire)
  divided by the writes people made.
- **staleness**: for each write and each other replica, how long until that
  replica held it (a reader there saw the older value meanwhile).

Files: runs.csv and runs.json (every run), runs/ (one CSV and one JSON per
run), summary.csv and summary.json (the table above with min and max),
plots/ (PNG and SVG).
`)
	notConv := 0
	for _, r := range runs {
		if !r.Metrics.Converged {
			notConv++
		}
	}
	if notConv > 0 {
		fmt.Fprintf(&b, "\n%d run(s) did not converge within the settle period; their convergence time is counted up to its end.\n", notConv)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// fmtDur writes a duration compactly: 7d, 1d12h, 4h30m, 90s, 250ms.
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	if d == 0 {
		return "0s"
	}
	if d < time.Second || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	sec := d / time.Second
	for _, p := range []struct {
		n    time.Duration
		unit string
	}{{days, "d"}, {h, "h"}, {m, "m"}, {sec, "s"}} {
		if p.n > 0 {
			fmt.Fprintf(&b, "%d%s", p.n, p.unit)
		}
	}
	return b.String()
}

// small reports whether the runs are hand-made scenarios whose final
// records are worth listing.
func small(runs []*RunResult) bool {
	for _, r := range runs {
		if r.Final == nil || len(r.Final) > 5 || r.Sweep != nil {
			return false
		}
	}
	return len(runs) > 0
}

func inline(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}
