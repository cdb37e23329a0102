package lab

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Shipped holds the scenarios shipped with replicad (lab/scenarios).
//
//go:embed scenarios/*.hcl
var Shipped embed.FS

// ShippedNames lists the shipped scenarios by name (file name without
// .hcl).
func ShippedNames() []string {
	ents, _ := Shipped.ReadDir("scenarios")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".hcl"))
	}
	sort.Strings(out)
	return out
}

// Load reads a scenario file, or a shipped scenario by name.
func Load(arg string) ([]*Scenario, error) {
	src, err := os.ReadFile(arg)
	name := arg
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		n := strings.TrimSuffix(path.Base(filepath.ToSlash(arg)), ".hcl")
		var err2 error
		src, err2 = Shipped.ReadFile("scenarios/" + n + ".hcl")
		if err2 != nil {
			return nil, fmt.Errorf("scenario %q: no such file, and no shipped scenario of that name (shipped: %s)", arg, strings.Join(ShippedNames(), ", "))
		}
		name = "lab/scenarios/" + n + ".hcl"
	}
	return ParseScenario(name, src)
}

const usage = `Usage: replicad lab COMMAND

Commands:
  run SCENARIO [flags]   simulate a scenario (a file, or a shipped name) under
                         each strategy and write CSV, JSON, plots and a report
  list                   list the shipped scenarios and the strategies

Flags of run:
`

// Main is the replicad lab command. It returns the exit status. now is
// the wall clock, read only by the progress report on stderr (elapsed
// time, ETA): the simulation's time is simulated.
func Main(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		fs := runFlags(stderr)
		fs.PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "list":
		fmt.Fprintln(stdout, "Shipped scenarios:")
		for _, n := range ShippedNames() {
			scs, err := Load(n)
			desc := ""
			if err == nil {
				desc = scs[0].Description
			}
			fmt.Fprintf(stdout, "  %-16s %s\n", n, desc)
		}
		fmt.Fprintln(stdout, "Strategies:")
		for _, n := range DefaultStrategies {
			fmt.Fprintf(stdout, "  %s\n", n)
		}
		return 0
	case "run":
		return runCmd(args[1:], stdout, stderr, now)
	}
	fmt.Fprintf(stderr, "replicad lab: unknown command %q (see replicad lab help)\n", args[0])
	return 2
}

type runOpts struct {
	out        string
	seeds      string
	runs       int
	strategies []string
	workers    int
	progress   string
}

var runOptions runOpts

func runFlags(w io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("replicad lab run", pflag.ContinueOnError)
	fs.SetOutput(w)
	fs.StringVar(&runOptions.out, "out", "", "output directory (default lab-out/SCENARIO-NAME)")
	fs.StringVar(&runOptions.seeds, "seeds", "", "comma-separated seeds, replacing the scenario's")
	fs.IntVar(&runOptions.runs, "runs", 0, "use seeds 1..N, replacing the scenario's")
	fs.StringSliceVar(&runOptions.strategies, "strategies", nil, "strategies to compare, replacing the scenario's (comma-separated)")
	fs.IntVar(&runOptions.workers, "workers", runtime.GOMAXPROCS(0), "runs simulated in parallel (results do not depend on it)")
	fs.StringVar(&runOptions.progress, "progress", ProgressAuto, "progress on stderr: auto (a bar on a terminal, else lines), bar, lines or none")
	return fs
}

func runCmd(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	runOptions = runOpts{}
	fs := runFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "replicad lab run: want one SCENARIO (a file, or one of: "+strings.Join(ShippedNames(), ", ")+")")
		return 2
	}
	scs, err := Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "replicad lab run: "+err.Error())
		return 2
	}
	opt := Options{Strategies: runOptions.strategies, Workers: runOptions.workers}
	if runOptions.seeds != "" {
		for _, s := range strings.Split(runOptions.seeds, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "replicad lab run: --seeds: %q is not a seed\n", s)
				return 2
			}
			opt.Seeds = append(opt.Seeds, v)
		}
	}
	for i := 1; i <= runOptions.runs; i++ {
		opt.Seeds = append(opt.Seeds, uint64(i))
	}
	finishProgress := func() {}
	switch runOptions.progress {
	case ProgressAuto, ProgressBar, ProgressLines:
		bar := runOptions.progress == ProgressBar || runOptions.progress == ProgressAuto && isTerminal(stderr)
		pr := newProgress(stderr, bar, now)
		opt.Progress = pr.update
		finishProgress = pr.finish
	case ProgressNone:
	default:
		fmt.Fprintf(stderr, "replicad lab run: --progress %q: want auto, bar, lines or none\n", runOptions.progress)
		return 2
	}
	for _, s := range opt.Strategies {
		if _, err := Lookup(s); err != nil {
			fmt.Fprintln(stderr, "replicad lab run: "+err.Error())
			return 2
		}
	}
	dir := runOptions.out
	if dir == "" {
		dir = filepath.Join("lab-out", scs[0].Name)
	}
	if os.Getenv("GOGC") == "" {
		// The simulation allocates much and keeps little: collect less
		// often (the results do not depend on it).
		debug.SetGCPercent(400)
	}
	runs, err := Run(scs, opt)
	finishProgress()
	if err != nil {
		fmt.Fprintln(stderr, "replicad lab run: "+err.Error())
		return 1
	}
	out, err := Render(scs, runs)
	if err != nil {
		fmt.Fprintln(stderr, "replicad lab run: "+err.Error())
		return 1
	}
	if err := out.Write(dir); err != nil {
		fmt.Fprintln(stderr, "replicad lab run: "+err.Error())
		return 1
	}
	hours := 0.0
	for _, r := range runs {
		hours += r.Metrics.DeviceHours
	}
	fmt.Fprintf(stdout, "%s: %d runs, %s simulated device-hours; wrote %d files to %s\n\n", scs[0].Name, len(runs), fmtF(float64(int64(hours*10))/10), len(out), dir)
	fmt.Fprint(stdout, SummaryTable(Summarize(runs)))
	fmt.Fprintf(stdout, "\nReport: %s\n", filepath.Join(dir, "report.md"))
	return 0
}
