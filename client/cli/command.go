package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/replicad/replicad/client"
	"github.com/spf13/pflag"
)

// Command is one client subcommand. The help (replicad help, replicad
// help NAME, NAME --help), the usage errors and the dispatch are derived
// from the table of them (Commands).
type Command struct {
	Name    string // the word after replicad
	Args    string // its arguments as the usage line shows them ("TABLE ID")
	Summary string // one line, for the list of commands
	Help    string // more, for replicad help NAME ("" for none)
	// MinArgs and MaxArgs bound the number of arguments (MaxArgs < 0:
	// any number); outside them is a usage error showing the usage line.
	MinArgs, MaxArgs int
	flags            func(fs *pflag.FlagSet, f *flagValues) // the command's own flags
	run              func(c *call) error
}

// Synopsis is the command with its arguments ("get TABLE ID").
func (c *Command) Synopsis() string { return strings.TrimSpace(c.Name + " " + c.Args) }

// flagValues holds every command's flags; each command declares those it
// takes (Command.flags).
type flagValues struct {
	addr                                   string
	json                                   bool
	guess, draft, online, follow, yes, all bool
	limit, pick                            int
	after, value, text, since, kind, table string
	with, prefer, before                   string
	where, order, cursor, fields           string // query, view
	count, explain, watch                  bool
}

// call is one run of a command: its output, flags and arguments.
type call struct {
	*env
	cmd  *Command
	fs   *pflag.FlagSet
	f    *flagValues
	args []string
}

// usage is the usage error of the command's arguments.
func (c *call) usage() error {
	return usagef("usage: replicad %s (replicad help %s)", c.cmd.Synopsis(), c.cmd.Name)
}

// Lookup returns the command named name, or nil.
func Lookup(name string) *Command {
	for _, c := range Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// IsCommand reports whether name is a client subcommand.
func IsCommand(name string) bool { return Lookup(name) != nil }

// flagSet returns the command's flags: the common --addr and --json,
// then its own.
func (c *Command) flagSet(stderr io.Writer) (*pflag.FlagSet, *flagValues) {
	f := &flagValues{}
	fs := pflag.NewFlagSet("replicad "+c.Name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVar(&f.addr, "addr", "", "agent API address (default $REPLICAD_ADDR, else "+client.DefaultAddr+")")
	fs.BoolVar(&f.json, "json", false, "print JSON even on a terminal")
	if c.flags != nil {
		c.flags(fs, f)
	}
	fs.Usage = func() { c.writeHelp(stderr, fs) }
	return fs, f
}

func (c *Command) writeHelp(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: replicad %s [flags]\n\n%s.\n", c.Synopsis(), upperFirst(c.Summary))
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Help writes the help of command name (its usage line, summary, help
// text and flags), as name --help does.
func Help(w io.Writer, name string) error {
	c := Lookup(name)
	if c == nil {
		return unknownCommand(name, nil)
	}
	fs, _ := c.flagSet(w)
	c.writeHelp(w, fs)
	return nil
}

// WriteList writes one line per command (synopsis and summary), indented
// by two spaces, for the list of commands.
func WriteList(w io.Writer) {
	for _, c := range Commands {
		writeListLine(w, c.Synopsis(), c.Summary)
	}
}

// ListWidth is the width of the synopsis column of the list of commands.
const ListWidth = 29

func writeListLine(w io.Writer, synopsis, summary string) {
	if len(synopsis) > ListWidth {
		fmt.Fprintf(w, "  %s\n  %-*s %s\n", synopsis, ListWidth, "", summary)
		return
	}
	fmt.Fprintf(w, "  %-*s %s\n", ListWidth, synopsis, summary)
}

// unknownCommand is the usage error for a name that is no command; extra
// are more names to suggest from (the daemon's subcommands).
func unknownCommand(name string, extra []string) error {
	names := append([]string(nil), extra...)
	for _, c := range Commands {
		names = append(names, c.Name)
	}
	if s := Suggest(name, names); s != "" {
		return usagef("unknown command %q: did you mean %s? (see replicad help)", name, s)
	}
	return usagef("unknown command %q (see replicad help)", name)
}

// UnknownCommand reports name as no command of replicad, suggesting the
// nearest of the client commands and extra, if one is near.
func UnknownCommand(name string, extra []string, stderr io.Writer) int {
	return report(unknownCommand(name, extra), stderr)
}

// Suggest returns the name of names nearest to name: one it is a prefix
// of or that is a prefix of it (from two letters), else one within two edits (one for names
// of four letters or less); "" if none is near.
func Suggest(name string, names []string) string {
	if name == "" {
		return ""
	}
	best, bestD := "", 0
	for _, n := range names {
		if len(name) >= 2 && (strings.HasPrefix(n, name) || strings.HasPrefix(name, n)) {
			return n
		}
		max := 2
		if len(name) <= 4 {
			max = 1
		}
		if d := editDistance(name, n); d <= max && (best == "" || d < bestD) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (adjacent swaps count
// as one edit) between a and b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Run runs the client subcommand args[0] with its arguments and returns
// the exit status. stdout is checked for a terminal when it is an
// *os.File.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return report(run(ctx, args, stdout, stderr), stderr)
}

// report prints err (if any) as one line and returns the exit status: 0,
// 2 for bad usage, 1 for any other error.
func report(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "replicad: "+strings.ReplaceAll(err.Error(), "\n", " "))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runOn(ctx, args, stdout, stderr, isTerminal(stdout))
}

// runOn is run with stdout a terminal or not.
func runOn(ctx context.Context, args []string, stdout, stderr io.Writer, term bool) error {
	if len(args) == 0 {
		return usagef("no command (see replicad help)")
	}
	cmd := Lookup(args[0])
	if cmd == nil {
		return unknownCommand(args[0], nil)
	}
	fs, f := cmd.flagSet(stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", cmd.Name, err)
	}
	c := &call{cmd: cmd, fs: fs, f: f, args: fs.Args(),
		env: &env{ctx: ctx, c: client.New(f.addr), out: stdout, stderr: stderr, term: term, guess: f.guess}}
	c.json = f.json || !c.term
	if len(c.args) < cmd.MinArgs || cmd.MaxArgs >= 0 && len(c.args) > cmd.MaxArgs {
		return c.usage()
	}
	return cmd.run(c)
}
