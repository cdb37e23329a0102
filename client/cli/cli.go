package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/client"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Commands lists the client subcommands with a one-line summary.
var Commands = [][2]string{
	{"put TABLE ID FIELD=TEXT...", "set fields: FIELD=TEXT a string, FIELD:=JSON any JSON value (--guess: FIELD=VALUE is JSON where it parses)"},
	{"get TABLE ID", "show a record, with conflicted fields' candidates"},
	{"delete TABLE ID", "delete a record"},
	{"list TABLE", "list records (--limit N, --after ID)"},
	{"drafts", "list the drafts kept on this device (--table T)"},
	{"commit TABLE ID", "publish a record's draft as an ordinary write"},
	{"discard TABLE ID", "discard a record's draft"},
	{"conflicts", "list conflicted fields and their candidates"},
	{"resolve TABLE ID FIELD", "resolve a conflict (--pick N | --value JSON | --text TEXT)"},
	{"duplicates", "list suspected duplicate records (--all: resolved ones too)"},
	{"dedupe TABLE ID ACTION", "resolve a suspected duplicate: keep, merge (--with ID, --prefer existing|new) or discard"},
	{"workflows", "the hub's workflows: cursor, deliveries, last error"},
	{"deliveries WORKFLOW", "a workflow's recorded outcomes, newest first (--limit N, --before CURSOR)"},
	{"profile preview|show|reload", "offline profiles: what DEVICE's profile would hold (on a hub), the profiles or scope in force, reload the hub's file"},
	{"errors", "list the sync-error log: rejected changes and overridden values (--kind rejected|overridden, --after ID)"},
	{"retry EID", "re-apply a sync error's losing change as a new write"},
	{"sync", "sync now with every reachable partner"},
	{"offline", "stop using the network"},
	{"online", "use the network again (a sync round starts)"},
	{"status", "node status"},
	{"peers", "every node that synced with this one (a hub's devices): direction, last session, result, writes each way, pending, errors, skew, version"},
	{"changes", "print the change feed (--since CURSOR, --follow)"},
	{"reset --yes", "discard the local replica and resync it from the hub"},
	{"compact", "compact the store online; print its disk use before and after"},
}

// IsCommand reports whether name is a client subcommand.
func IsCommand(name string) bool {
	for _, c := range Commands {
		if strings.Fields(c[0])[0] == name {
			return true
		}
	}
	return false
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type env struct {
	ctx    context.Context
	c      *client.Client
	out    io.Writer
	json   bool
	term   bool
	stderr io.Writer
	guess  bool // put --guess: FIELD=VALUE is JSON where it parses
}

// Run runs the client subcommand args[0] with its arguments and returns
// the exit status. stdout is checked for a terminal when it is an
// *os.File.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(stderr, "replicad: "+msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// CommandArgs moves the subcommand to the front when global flags come
// first ("replicad --addr H:P get t 1"), so that args[0] names it. ok is
// false when there is no subcommand.
func CommandArgs(args []string) (out []string, ok bool) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			if i > 0 && (args[i-1] == "--addr") {
				continue
			}
			out = append([]string{a}, args[:i]...)
			return append(out, args[i+1:]...), true
		}
	}
	return args, false
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("no command (see replicad help)")
	}
	cmd := args[0]
	fs := pflag.NewFlagSet("replicad "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	addr := fs.String("addr", "", "agent API address (default $REPLICAD_ADDR, else "+client.DefaultAddr+")")
	asJSON := fs.Bool("json", false, "print JSON even on a terminal")
	var (
		limit  int
		after  string
		pick   int
		value  string
		yes    bool
		since  string
		follow bool
		kind   string
	)
	switch cmd {
	case "put":
		fs.Bool("guess", false, "FIELD=VALUE is JSON where it parses, else a string (warns when it looks like broken JSON)")
	case "list":
		fs.IntVar(&limit, "limit", 0, "records per page (default 100)")
		fs.StringVar(&after, "after", "", "start after this id")
	case "resolve":
		fs.IntVar(&pick, "pick", -1, "keep candidate `N` (0-based, as listed)")
		fs.StringVar(&value, "value", "", "write this `JSON` value instead")
		fs.String("text", "", "write this `TEXT` (a string) instead")
	case "reset":
		fs.BoolVar(&yes, "yes", false, "confirm: discard the local replica")
	case "changes":
		fs.StringVar(&since, "since", "0", "cursor to start after (0: the beginning; now: only new changes)")
		fs.BoolVar(&follow, "follow", false, "keep streaming new changes")
	case "errors":
		fs.StringVar(&after, "after", "", "list entries after this id")
		fs.StringVar(&kind, "kind", "", "only entries of `KIND`: rejected (a change undone) or overridden (lww or client-wins kept another value)")
	}
	var mf modeFlags // put --draft, get --draft|--online, list --online, drafts: drafts.go
	addModeFlags(cmd, fs, &mf)
	var of onlineFlags // duplicates, dedupe, workflows, deliveries: online.go
	addOnlineFlags(cmd, fs, &of)
	fs.Usage = func() {
		for _, c := range Commands {
			if strings.Fields(c[0])[0] == cmd {
				fmt.Fprintf(stderr, "Usage: replicad %s [flags]\n\n%s.\n\nFlags:\n", c[0], c[1])
			}
		}
		fmt.Fprint(stderr, fs.FlagUsages())
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", cmd, err)
	}
	e := &env{ctx: ctx, c: client.New(*addr), out: stdout, stderr: stderr, term: isTerminal(stdout)}
	e.guess, _ = fs.GetBool("guess")
	e.json = *asJSON || !e.term
	a := fs.Args()
	nargs := func(n int, what string) error {
		if len(a) != n {
			return usagef("usage: replicad %s %s", cmd, what)
		}
		return nil
	}
	if handled, err := e.modes(cmd, a, &mf, limit, after); handled {
		return err
	}
	if handled, err := e.online(cmd, a, &of); handled {
		return err
	}
	if handled, err := e.profileCmd(cmd, a); handled {
		return err
	}
	switch cmd {
	case "put":
		if len(a) < 3 {
			return usagef("usage: replicad put [--guess] TABLE ID " + fieldsUsage)
		}
		fields, err := parseFields(a[2:], e.guess, e.stderr)
		if err != nil {
			return err
		}
		r, err := e.c.Put(ctx, a[0], a[1], fields)
		if err != nil {
			return err
		}
		return e.record(r)
	case "get", "delete":
		if err := nargs(2, "TABLE ID"); err != nil {
			return err
		}
		var r *api.Record
		var err error
		if cmd == "get" {
			r, err = e.c.Get(ctx, a[0], a[1])
		} else {
			r, err = e.c.Delete(ctx, a[0], a[1])
		}
		if err != nil {
			return err
		}
		if cmd == "delete" && !e.json {
			fmt.Fprintf(e.out, "deleted %s/%s\n", a[0], a[1])
			return nil
		}
		return e.record(r)
	case "list":
		if err := nargs(1, "TABLE [--limit N] [--after ID]"); err != nil {
			return err
		}
		p, err := e.c.List(ctx, a[0], after, limit)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(p)
		}
		rows := [][]string{{"ID", "FIELDS", "CONFLICTS"}}
		for _, r := range p.Records {
			rows = append(rows, []string{r.ID, fieldsText(r.Fields), conflictNames(r)})
		}
		e.table(rows)
		if p.Next != "" {
			fmt.Fprintf(e.out, "more: replicad list %s --after %s\n", a[0], p.Next)
		}
		return nil
	case "conflicts":
		if err := nargs(0, ""); err != nil {
			return err
		}
		cs, err := e.c.Conflicts(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(map[string]any{"conflicts": cs})
		}
		rows := [][]string{{"TABLE", "ID", "FIELD", "#", "VALUE", "NODE", "WRITTEN"}}
		for _, c := range cs {
			if c.Kind == "duplicate" {
				rows = append(rows, []string{c.Table, c.ID, "(duplicate)", "", "same keys as " + strings.Join(c.With, ","), "", ""})
				continue
			}
			if c.Base != nil {
				rows = append(rows, []string{c.Table, c.ID, c.Field, "base", candText(*c.Base), c.Base.Node, hlcText(c.Base.HLC)})
			}
			for i, cand := range c.Candidates {
				rows = append(rows, []string{c.Table, c.ID, c.Field, strconv.Itoa(i), candText(cand), cand.Node, hlcText(cand.HLC)})
			}
		}
		e.table(rows)
		return nil
	case "resolve":
		if err := nargs(3, "TABLE ID FIELD (--pick N | --value JSON | --text TEXT)"); err != nil {
			return err
		}
		hasPick, hasValue, hasText := fs.Changed("pick"), fs.Changed("value"), fs.Changed("text")
		if n := btoi(hasPick) + btoi(hasValue) + btoi(hasText); n != 1 {
			return usagef("resolve: give exactly one of --pick N, --value JSON or --text TEXT")
		}
		var r *api.Record
		var err error
		switch {
		case hasPick:
			r, err = e.c.ResolvePick(ctx, a[0], a[1], a[2], pick)
		case hasValue:
			raw, jerr := jsonArg(value)
			if jerr != nil {
				return usagef("resolve: --value %s: %v; for text use --text", value, jerr)
			}
			r, err = e.c.ResolveValue(ctx, a[0], a[1], a[2], raw)
		default:
			text, _ := fs.GetString("text")
			r, err = e.c.ResolveValue(ctx, a[0], a[1], a[2], quoteJSON(text))
		}
		if err != nil {
			return err
		}
		return e.record(r)
	case "errors":
		if err := nargs(0, ""); err != nil {
			return err
		}
		var aft uint64
		if after != "" {
			var err error
			if aft, err = strconv.ParseUint(after, 10, 64); err != nil {
				return usagef("errors: --after %q: want an error id", after)
			}
		}
		if kind != "" && kind != "rejected" && kind != "overridden" {
			return usagef("errors: --kind %q: want rejected or overridden", kind)
		}
		es, err := e.c.SyncErrorsOfKind(ctx, aft, kind)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(map[string]any{"errors": es})
		}
		rows := [][]string{{"ID", "TIME", "KIND", "RECORD", "POLICY", "LOSING", "WINNING", "RETRIED", "DETAIL"}}
		for _, x := range es {
			rows = append(rows, []string{strconv.FormatUint(x.ID, 10), timeText(x.Time), x.Kind, x.Table + "/" + x.Record, x.Policy, fieldsText(x.Losing), fieldsText(x.Winning), strconv.FormatBool(x.Retried), x.Detail})
		}
		e.table(rows)
		return nil
	case "retry":
		if err := nargs(1, "EID"); err != nil {
			return err
		}
		id, err := strconv.ParseUint(a[0], 10, 64)
		if err != nil {
			return usagef("retry: %q: want a sync-error id", a[0])
		}
		r, err := e.c.Retry(ctx, id)
		if err != nil {
			return err
		}
		return e.record(r)
	case "sync":
		if err := nargs(0, ""); err != nil {
			return err
		}
		return e.sync()
	case "offline", "online":
		if err := nargs(0, ""); err != nil {
			return err
		}
		on := cmd == "online"
		if err := e.c.SetOnline(ctx, on); err != nil {
			return err
		}
		if e.json {
			return e.emit(map[string]bool{"online": on})
		}
		fmt.Fprintln(e.out, cmd)
		return nil
	case "status":
		if err := nargs(0, ""); err != nil {
			return err
		}
		s, err := e.c.Status(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(s)
		}
		return e.status(s)
	case "peers":
		if err := nargs(0, ""); err != nil {
			return err
		}
		ps, err := e.c.Peers(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(map[string]any{"peers": ps})
		}
		e.peers(ps)
		return nil
	case "changes":
		if err := nargs(0, ""); err != nil {
			return err
		}
		if follow {
			return e.c.Follow(ctx, since, func(ch api.Change) error {
				if e.json {
					return e.emitLine(ch)
				}
				fmt.Fprintf(e.out, "%s\t%s/%s\t%s:%d\n", ch.Cursor, ch.Table, ch.ID, ch.Origin, ch.Seq)
				return nil
			})
		}
		chs, err := e.c.Changes(ctx, since, 0)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(chs)
		}
		rows := [][]string{{"CURSOR", "RECORD", "ORIGIN", "SEQ"}}
		for _, ch := range chs.Changes {
			rows = append(rows, []string{ch.Cursor, ch.Table + "/" + ch.ID, ch.Origin, strconv.FormatUint(ch.Seq, 10)})
		}
		e.table(rows)
		return nil
	case "reset":
		if err := nargs(0, ""); err != nil {
			return err
		}
		if !yes {
			return usagef("reset discards this node's replica (moved aside in its data directory) and resyncs it from the hub; confirm with --yes")
		}
		r, err := e.c.Reset(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(r)
		}
		fmt.Fprintf(e.out, "reset: new node %s, old store moved to %s\n", r.Node, r.MovedTo)
		return e.summary(&r.Sync)
	case "compact":
		if err := nargs(0, ""); err != nil {
			return err
		}
		r, err := e.c.Compact(ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.emit(r)
		}
		fmt.Fprintf(e.out, "compacted in %.1fs: %s before (sst %s, wal %s, other %s), %s after (sst %s, wal %s, other %s)\n",
			float64(r.DurationMs)/1000, mib(r.Before.Total), mib(r.Before.SST), mib(r.Before.WAL), mib(r.Before.Other),
			mib(r.After.Total), mib(r.After.SST), mib(r.After.WAL), mib(r.After.Other))
		return nil
	}
	return usagef("unknown command %q (see replicad help)", cmd)
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *env) emit(v any) error {
	enc := json.NewEncoder(e.out)
	if e.term {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

func (e *env) emitLine(v any) error { return json.NewEncoder(e.out).Encode(v) }

func (e *env) table(rows [][]string) {
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (e *env) record(r *api.Record) error {
	if e.json {
		return e.emit(r)
	}
	fmt.Fprintf(e.out, "%s/%s\n", r.Table, r.ID)
	names := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		names = append(names, k)
	}
	for k := range r.Conflicts {
		if _, ok := r.Fields[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	rows := [][]string{{"FIELD", "VALUE", "CONFLICT"}}
	for _, k := range names {
		v := string(r.Fields[k])
		conf := ""
		if cs := r.Conflicts[k]; len(cs) > 0 {
			var parts []string
			for i, c := range cs {
				parts = append(parts, fmt.Sprintf("[%d] %s", i, candText(c)))
			}
			conf = strings.Join(parts, "  ")
		}
		rows = append(rows, []string{k, v, conf})
	}
	e.table(rows)
	return nil
}

func candText(c api.Candidate) string {
	if c.Deleted {
		return "(deleted)"
	}
	return string(c.Value)
}

func fieldsText(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+string(m[k]))
	}
	return strings.Join(parts, " ")
}

func conflictNames(r api.Record) string {
	var n []string
	for k := range r.Conflicts {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

func (e *env) status(s *api.Status) error {
	rows := [][]string{
		{"node", s.Node},
		{"role", s.Role},
		{"online", strconv.FormatBool(s.Online)},
		{"cluster", s.ClusterID},
		{"api / sync / gossip", s.APIAddr + " / " + s.SyncAddr + " / " + s.GossipAddr},
		{"conflicts", strconv.Itoa(s.Conflicts)},
		{"sync errors (rejected)", strconv.Itoa(s.SyncErrors)},
		{"overridden values", strconv.Itoa(s.Overridden)},
		{"parked writes", strconv.Itoa(s.Parked)},
		{"feed head", s.FeedHead},
		{"drafts (not synced)", strconv.Itoa(s.Drafts)},
		{"encrypted at rest", strconv.FormatBool(s.EncryptedAtRest)},
	}
	if s.PendingNote != "" { // absent on a hub that syncs with no other hub
		rows = append(rows, []string{"pending outbound", strconv.FormatUint(s.PendingOutbound, 10)})
	}
	if s.Sync.Running {
		rows = append(rows, []string{"syncing", progressText(s.Sync.Progress)})
	}
	e.table(rows)
	if len(s.Tables) > 0 {
		fmt.Fprintln(e.out)
		rows := [][]string{{"TABLE", "POLICY", "LAST SYNC"}}
		for _, t := range s.Tables {
			rows = append(rows, []string{t.Table, t.Policy, orNever(t.LastSync)})
		}
		e.table(rows)
	}
	if len(s.Policies) > 0 {
		fmt.Fprintln(e.out, "\nnote:", s.PolicyNote)
	}
	if len(s.Peers) > 0 {
		fmt.Fprintln(e.out)
		e.peers(s.Peers)
	}
	return nil
}

func orNever(s string) string {
	if s == "" {
		return "never"
	}
	return timeText(s)
}

func (e *env) peers(ps []api.Peer) {
	rows := [][]string{{"NODE", "ROLE", "DIRECTION", "ADDR", "LAST SESSION", "RESULT", "WRITES IN", "OUT", "PENDING", "ERRORS", "SKEW MS", "VERSION", "LAST ERROR"}}
	for _, p := range ps {
		opt := func(v string, ok bool) string {
			if !ok {
				return "-"
			}
			return v
		}
		pending, errs := "", ""
		if p.Pending != nil {
			pending = strconv.FormatUint(*p.Pending, 10)
		}
		if p.SyncErrors != nil {
			errs = strconv.Itoa(*p.SyncErrors)
		}
		rows = append(rows, []string{opt(p.Node, p.Node != ""), opt(p.Role, p.Role != ""), p.Direction, p.Addr, orNever(p.LastSessionAt), opt(p.Result, p.Result != ""),
			strconv.FormatUint(p.WritesIn, 10), strconv.FormatUint(p.WritesOut, 10), opt(pending, pending != ""), opt(errs, errs != ""),
			strconv.FormatInt(p.SkewMs, 10), opt(p.Version, p.Version != ""), p.LastError})
	}
	e.table(rows)
}

func progressText(s api.Stats) string {
	return fmt.Sprintf("%d writes in, %d out, %s in, %s out", s.WritesApplied, s.WritesSent, bytesText(s.BytesReceived), bytesText(s.BytesSent))
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// sync runs sync now; on a terminal it shows a progress line (records and
// bytes, with a moving bar: the total is not known in advance) by polling
// the status while the round runs.
func (e *env) sync() error {
	type res struct {
		s   *api.Summary
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := e.c.Sync(e.ctx)
		done <- res{s, err}
	}()
	var r res
	if e.term {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		frame := 0
	loop:
		for {
			select {
			case r = <-done:
				break loop
			case <-tick.C:
				st, err := e.c.Status(e.ctx)
				if err != nil || !st.Sync.Running {
					continue
				}
				frame++
				const w = 20
				bar := []byte(strings.Repeat(" ", w))
				for i := 0; i < 4; i++ {
					bar[(frame+i)%w] = '='
				}
				fmt.Fprintf(e.stderr, "\r[%s] %s  %s ", bar, progressText(st.Sync.Progress), time.Since(start).Round(time.Second))
			}
		}
		if frame > 0 {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
	} else {
		r = <-done
	}
	if r.err != nil {
		return r.err
	}
	if e.json {
		if err := e.emit(r.s); err != nil {
			return err
		}
	} else if err := e.summary(r.s); err != nil {
		return err
	}
	if r.s.Partners > 0 && r.s.Succeeded == 0 || r.s.Partners == 0 && len(r.s.Failed) > 0 {
		return fmt.Errorf("sync failed: %s", strings.Join(r.s.Failed, "; "))
	}
	return nil
}

func (e *env) summary(s *api.Summary) error {
	fmt.Fprintf(e.out, "synced with %d of %d partners in %d ms: %s\n", s.Succeeded, s.Partners, s.Millis, progressText(s.Stats))
	for _, f := range s.Failed {
		fmt.Fprintln(e.out, "  failed:", f)
	}
	if d := s.Decisions; d != nil && d.State == "tentative" {
		fmt.Fprintln(e.out, "  tentative:", d.Detail)
	} else if d != nil && d.State != "decided" {
		fmt.Fprintf(e.out, "  %d changes %s: %s\n", d.Count, d.State, d.Detail)
		for _, u := range d.Undecided {
			fmt.Fprintf(e.out, "    %s/%s (seq %d)\n", u.Table, u.ID, u.Seq)
		}
	}
	for _, se := range s.SyncErrors {
		fmt.Fprintf(e.out, "  sync error %d: %s/%s: %s\n", se.ID, se.Table, se.Record, se.Detail)
	}
	return nil
}
