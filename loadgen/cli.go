package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Scenarios names the scenarios `replicad bench` runs, in order.
var Scenarios = []string{"api-latency", "api-throughput", "hub-fanin", "initial-sync", "hub-memory"}

// DefaultScenarios run when none is named (hub-memory is long: name it).
var DefaultScenarios = []string{"api-latency", "api-throughput", "hub-fanin", "initial-sync"}

// Main runs `replicad bench ARGS`: the load scenarios, or `report` (see
// package loadgen/report, wired by the command). It returns the exit
// code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("replicad bench", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out       = fs.String("out", "bench-load.json", "write the results (JSON) here")
		dir       = fs.String("dir", "", "work directory for agents' data and the baselines (default: a temporary directory, removed after)")
		bin       = fs.String("bin", "", "replicad binary to start agents with (default: this one)")
		quick     = fs.Bool("quick", false, "small sizes and short runs (about 1 minute in all)")
		runs      = fs.Int("runs", 0, "repetitions of each measurement (default 5, quick 2)")
		writes    = fs.Int("writes", 0, "api-latency: writes per run (default 2000, quick 300)")
		clients   = fs.Int("clients", 32, "api-throughput: concurrent API clients")
		duration  = fs.Duration("duration", 0, "api-throughput: length of a run (default 5s, quick 2s)")
		devices   = fs.String("devices", "", "hub-fanin: fleet sizes, comma-separated (default 10,50,200; quick 10,50)")
		devWrites = fs.Int("device-writes", 0, "hub-fanin: writes per device per run (default 1000, quick 200)")
		records   = fs.Int("records", 0, "initial-sync: records (default 200000, quick 20000)")
		memRecs   = fs.Int("mem-records", 0, "hub-memory: records loaded (default 1000000, quick 100000)")
		memDevs   = fs.Int("mem-devices", 0, "hub-memory: devices (default 200, quick 50)")
		steady    = fs.Duration("steady", 0, "hub-memory: length of the steady run (default 30m, quick 2m)")
		api       = fs.String("api", "", "api-latency/api-throughput: a running agent's API address (default: start one)")
		hubAPI    = fs.String("hub-api", "", "hub scenarios: a running hub's API address (with --hub-sync; default: start one)")
		hubSync   = fs.String("hub-sync", "", "hub scenarios: a running hub's sync address")
		cluster   = fs.String("cluster-id", "replicad", "cluster id of the agents")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: replicad bench [flags] [SCENARIO...]\n       replicad bench report [flags]\n\n"+
			"Drives replicad agents over the HTTP API and the sync protocol and measures them against\n"+
			"baselines taken in the same run. Scenarios: %s (default: %s).\n\nFlags:\n",
			strings.Join(Scenarios, ", "), strings.Join(DefaultScenarios, " "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	names := fs.Args()
	if len(names) == 0 {
		names = DefaultScenarios
	}
	for _, n := range names {
		if !contains(Scenarios, n) {
			fmt.Fprintf(stderr, "replicad bench: unknown scenario %q (want %s)\n", n, strings.Join(Scenarios, ", "))
			return 2
		}
	}
	q := func(full, short int) int {
		if *quick {
			return short
		}
		return full
	}
	pick := func(v, full, short int) int {
		if v > 0 {
			return v
		}
		return q(full, short)
	}
	pickDur := func(v, full, short time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		if *quick {
			return short
		}
		return full
	}
	fleet := []int{10, 50, 200}
	if *quick {
		fleet = []int{10, 50}
	}
	if *devices != "" {
		fleet = nil
		for _, s := range strings.Split(*devices, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "replicad bench: --devices: %q is not a positive number\n", s)
				return 2
			}
			fleet = append(fleet, n)
		}
	}
	if (*hubAPI == "") != (*hubSync == "") {
		fmt.Fprintln(stderr, "replicad bench: --hub-api and --hub-sync go together")
		return 2
	}
	cfg := &Config{Bin: *bin, Dir: *dir, Log: stderr, Runs: pick(*runs, 5, 2), Cluster: *cluster, API: *api, HubAPI: *hubAPI, HubSync: *hubSync}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "replicad bench: "+err.Error())
			return 1
		}
		cfg.Bin = exe
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "replicad-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "replicad bench: "+err.Error())
			return 1
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	} else if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "replicad bench: "+err.Error())
		return 1
	}
	doc := &Doc{Version: 1, Started: time.Now().UTC(), Host: thisHost()}
	save := func() error {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		return WriteDoc(*out, doc)
	}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "== %s\n", name)
		var rs []*Result
		var err error
		switch name {
		case "api-latency":
			var r *Result
			r, err = WriteLatency(ctx, cfg, WriteLatencyOpts{Writes: pick(*writes, 2000, 300)})
			rs = append(rs, r)
		case "api-throughput":
			var r *Result
			r, err = WriteThroughput(ctx, cfg, WriteThroughputOpts{Clients: *clients, Duration: pickDur(*duration, 5*time.Second, 2*time.Second)})
			rs = append(rs, r)
		case "hub-fanin":
			for _, n := range fleet {
				var r *Result
				r, err = HubFanin(ctx, cfg, HubFaninOpts{Devices: n, Writes: pick(*devWrites, 1000, 200)})
				rs = append(rs, r)
				if err != nil {
					break
				}
			}
		case "initial-sync":
			var r *Result
			r, err = InitialSync(ctx, cfg, InitialSyncOpts{Records: pick(*records, 200_000, 20_000), Fields: 4})
			rs = append(rs, r)
		case "hub-memory":
			var r *Result
			r, err = HubMemory(ctx, cfg, HubMemoryOpts{Records: pick(*memRecs, 1_000_000, 100_000), Devices: pick(*memDevs, 200, 50),
				Steady: pickDur(*steady, 30*time.Minute, 2*time.Minute), Every: 10 * time.Second, Writes: 5, Sample: 5 * time.Second})
			rs = append(rs, r)
		}
		for _, r := range rs {
			if r != nil {
				doc.Results = append(doc.Results, *r)
			}
		}
		if serr := save(); serr != nil {
			fmt.Fprintln(stderr, "replicad bench: "+serr.Error())
			return 1
		}
		if err != nil {
			fmt.Fprintf(stderr, "replicad bench: %s: %v\n", name, err)
			return 1
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "replicad bench: interrupted")
		return 1
	}
	doc.Host.LoadAvg = append(doc.Host.LoadAvg, loadAvg())
	if err := save(); err != nil {
		fmt.Fprintln(stderr, "replicad bench: "+err.Error())
		return 1
	}
	fmt.Fprintf(stdout, "results: %s\n", *out)
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
