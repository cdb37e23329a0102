package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/replicad/replicad/agent"
	"github.com/replicad/replicad/client/cli"
	"github.com/replicad/replicad/lab"
	"github.com/replicad/replicad/loadgen"
	"github.com/replicad/replicad/loadgen/report"
	"github.com/replicad/replicad/secure"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "lab" {
		return lab.Main(args[1:], os.Stdout, os.Stderr, time.Now)
	}
	if args[0] == "tls" {
		return secure.RunTLSCommand(args[1:], os.Stdout, os.Stderr)
	}
	if args[0] == "bench" {
		if len(args) > 1 && args[1] == "report" {
			return report.Main(args[2:], os.Stdout, os.Stderr)
		}
		return loadgen.Main(ctx, args[1:], os.Stdout, os.Stderr)
	}
	if args[0] != "agent" {
		args, _ = cli.CommandArgs(args)
		if !cli.IsCommand(args[0]) {
			fmt.Fprintf(os.Stderr, "replicad: unknown command %q (see replicad help)\n", args[0])
			return 2
		}
		return cli.Run(ctx, args, os.Stdout, os.Stderr)
	}
	cfg, err := agent.ParseArgs(args[1:], os.Stderr)
	if errors.Is(err, agent.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicad agent: "+err.Error())
		return 2
	}
	a, err := agent.New(cfg, agent.NewLogger(cfg, os.Stderr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicad agent: "+err.Error())
		return 1
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "replicad agent: "+err.Error())
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: replicad COMMAND [flags] [args]\n\nThe daemon:\n  agent                         run the daemon (replicad agent --help)\n  bench [SCENARIO...]           load scenarios against agents (replicad bench --help)\n  bench report                  the benchmark report of make bench (replicad bench report --help)\n  tls ...                       cluster CA, node certificates, gossip keys (replicad tls help)\n  lab run SCENARIO              deterministic simulation comparing conflict strategies (replicad lab help)\n\nClient commands (--addr HOST:PORT or $REPLICAD_ADDR, default 127.0.0.1:7400; --json):")
	for _, c := range cli.Commands {
		fmt.Fprintf(os.Stderr, "  %-29s %s\n", c[0], c[1])
	}
}
