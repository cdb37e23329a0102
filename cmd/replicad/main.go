package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/replicad/replicad/agent"
	"github.com/replicad/replicad/client/cli"
	"github.com/replicad/replicad/lab"
	"github.com/replicad/replicad/loadgen"
	"github.com/replicad/replicad/loadgen/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// subcommand is one of the daemon's subcommands; the client's are the
// table of package client/cli.
type subcommand struct {
	name     string
	synopsis string
	summary  string
	more     [][2]string // further lines of the list (synopsis, summary)
	helpArgs []string    // the arguments that make it print its help
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var subcommands = []subcommand{
	{name: "agent", synopsis: "agent", summary: "run the daemon (replicad agent --help)", helpArgs: []string{"--help"}, run: runAgent},
	{name: "bench", synopsis: "bench [SCENARIO...]", summary: "load scenarios against agents (replicad bench --help)",
		more:     [][2]string{{"bench report", "the benchmark report of make bench (replicad bench report --help)"}},
		helpArgs: []string{"--help"}, run: runBench},
	{name: "tls", synopsis: "tls ...", summary: "cluster CA, node certificates, gossip keys (replicad tls help)", helpArgs: []string{"help"},
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			return runTLS(args, stdout, stderr)
		}},
	{name: "lab", synopsis: "lab run SCENARIO", summary: "deterministic simulation comparing conflict strategies (replicad lab help)", helpArgs: []string{"help"},
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			return lab.Main(args, stdout, stderr, time.Now)
		}},
}

func lookup(name string) *subcommand {
	for i := range subcommands {
		if subcommands[i].name == name {
			return &subcommands[i]
		}
	}
	return nil
}

// names are the words replicad knows besides the client's commands.
func names() []string {
	out := []string{"help"}
	for _, s := range subcommands {
		out = append(out, s.name)
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "help" {
		return help(ctx, args[1], stdout, stderr)
	}
	if s := lookup(args[0]); s != nil {
		return s.run(ctx, args[1:], stdout, stderr)
	}
	args, ok := cli.CommandArgs(args)
	if !ok {
		fmt.Fprintln(stderr, "replicad: no command (see replicad help)")
		return 2
	}
	if s := lookup(args[0]); s != nil { // replicad --flag agent ...: the flags are its own
		return s.run(ctx, args[1:], stdout, stderr)
	}
	if !cli.IsCommand(args[0]) {
		return cli.UnknownCommand(args[0], names(), stderr)
	}
	return cli.Run(ctx, args, stdout, stderr)
}

// help runs `replicad help NAME`: the command's own help.
func help(ctx context.Context, name string, stdout, stderr io.Writer) int {
	if name == "help" || name == "-h" || name == "--help" {
		usage(stderr)
		return 0
	}
	if s := lookup(name); s != nil {
		return s.run(ctx, s.helpArgs, stdout, stderr)
	}
	if cli.IsCommand(name) {
		cli.Help(stderr, name)
		return 0
	}
	return cli.UnknownCommand(name, names(), stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: replicad COMMAND [flags] [args]\n\nThe daemon:")
	for _, s := range subcommands {
		fmt.Fprintf(w, "  %-*s %s\n", cli.ListWidth, s.synopsis, s.summary)
		for _, m := range s.more {
			fmt.Fprintf(w, "  %-*s %s\n", cli.ListWidth, m[0], m[1])
		}
	}
	fmt.Fprintln(w, "\nClient commands (--addr HOST:PORT or $REPLICAD_ADDR, default 127.0.0.1:7400; --json):")
	cli.WriteList(w)
	fmt.Fprintln(w, "\nreplicad help COMMAND shows a command's arguments and flags.")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "report" {
		return report.Main(args[1:], stdout, stderr)
	}
	return loadgen.Main(ctx, args, stdout, stderr)
}

func runAgent(ctx context.Context, args []string, _, stderr io.Writer) int {
	cfg, err := agent.ParseArgs(args, stderr)
	if errors.Is(err, agent.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "replicad agent: "+err.Error())
		return 2
	}
	a, err := agent.New(cfg, agent.NewLogger(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "replicad agent: "+err.Error())
		return 1
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "replicad agent: "+err.Error())
		return 1
	}
	return 0
}
