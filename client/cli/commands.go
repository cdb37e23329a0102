package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/replicad/replicad/api"
	"github.com/spf13/pflag"
)

// Commands is the table of client subcommands, in the order replicad
// help lists them.
var Commands = []*Command{
	{Name: "put", Args: "TABLE ID " + fieldsUsage, MinArgs: 3, MaxArgs: -1, run: runPut, flags: putFlags,
		Summary: "set fields: FIELD=TEXT a string, FIELD:=JSON any JSON value (--guess: FIELD=VALUE is JSON where it parses)",
		Help: `FIELD=TEXT always stores a string; FIELD:=JSON stores any JSON value
(tags:='["a","b"]', prio:=3, ok:=true), which must parse, else nothing is
stored. A FIELD=TEXT that is valid JSON gets a note on stderr. With
--draft the fields go to the record's draft, kept on this device only
(never synced) until replicad commit.`},
	{Name: "get", Args: "TABLE ID", MinArgs: 2, MaxArgs: 2, run: runGet, flags: getFlags,
		Summary: "show a record, with conflicted fields' candidates (--draft: with its draft; --online: live from the hub)"},
	{Name: "delete", Args: "TABLE ID", MinArgs: 2, MaxArgs: 2, run: runDelete,
		Summary: "delete a record"},
	{Name: "list", Args: "TABLE", MinArgs: 1, MaxArgs: 1, run: runList, flags: listFlags,
		Summary: "list records (--limit N, --after ID; --online: live from the hub)"},
	{Name: "query", Args: "TABLE", MinArgs: 1, MaxArgs: 1, run: runQuery, flags: queryFlags,
		Summary: "query records: --where CEL, --order F1,-F2, --limit N, --cursor C, --fields a,b, --count, --explain (--watch: live)",
		Help: `The where clause is CEL over the record's fields by name, id, now, today,
days(n), hours(n) and device.<attribute>. A page on a terminal ends with
the command for the next one (its --cursor). --watch keeps the result
live: on a terminal a table updated in place in the query's order, under
a line naming the last event; piped, one JSON event per line. A query
the agent refuses (it names the option and the offset in it) is exit 2.`},
	{Name: "views", MaxArgs: 0, run: runViews,
		Summary: "the views declared on the hub, with how many records each holds here"},
	{Name: "view", Args: "NAME", MinArgs: 1, MaxArgs: 1, run: runView, flags: viewFlags,
		Summary: "a view's records (--limit N, --cursor C, --fields a,b, --count, --explain, --draft, --online; --watch: live)",
		Help: `A view is a query declared on the hub (its table, where clause and order);
device.* in its where clause are this device's attributes. --watch as for
replicad query.`},
	{Name: "drafts", MaxArgs: 0, run: runDrafts, flags: draftsFlags,
		Summary: "list the drafts kept on this device (--table T)"},
	{Name: "commit", Args: "TABLE ID", MinArgs: 2, MaxArgs: 2, run: runCommit,
		Summary: "publish a record's draft as an ordinary write"},
	{Name: "discard", Args: "TABLE ID", MinArgs: 2, MaxArgs: 2, run: runDiscard,
		Summary: "discard a record's draft"},
	{Name: "conflicts", MaxArgs: 0, run: runConflicts,
		Summary: "list conflicted fields and their candidates"},
	{Name: "resolve", Args: "TABLE ID FIELD", MinArgs: 3, MaxArgs: 3, run: runResolve, flags: resolveFlags,
		Summary: "resolve a conflict (--pick N | --value JSON | --text TEXT)",
		Help:    "The value written supersedes every candidate on every replica."},
	{Name: "duplicates", MaxArgs: 0, run: runDuplicates, flags: duplicatesFlags,
		Summary: "list suspected duplicate records (--all: resolved ones too)"},
	{Name: "dedupe", Args: "TABLE ID keep|merge|discard", MinArgs: 3, MaxArgs: 3, run: runDedupe, flags: dedupeFlags,
		Summary: "resolve a suspected duplicate: keep, merge (--with ID, --prefer existing|new) or discard"},
	{Name: "workflows", MaxArgs: 0, run: runWorkflows,
		Summary: "the hub's workflows: cursor, deliveries, last error"},
	{Name: "deliveries", Args: "WORKFLOW", MinArgs: 1, MaxArgs: 1, run: runDeliveries, flags: deliveriesFlags,
		Summary: "a workflow's recorded outcomes, newest first (--limit N, --before CURSOR)"},
	{Name: "profile", Args: "preview DEVICE [PROFILE] | show | reload", MinArgs: 1, MaxArgs: 3, run: runProfile,
		Summary: "offline profiles: what DEVICE's profile would hold (on a hub), the profiles or scope in force, reload the hub's file",
		Help: `preview DEVICE [PROFILE]  what DEVICE's profile (or PROFILE, with DEVICE's attributes) would put on it, per table (on a hub)
show                      a hub's profiles, or the scope a device holds
reload                    make a hub reload its profiles file now`},
	{Name: "errors", MaxArgs: 0, run: runErrors, flags: errorsFlags,
		Summary: "list the sync-error log: rejected changes and overridden values (--kind rejected|overridden, --after ID)"},
	{Name: "retry", Args: "EID", MinArgs: 1, MaxArgs: 1, run: runRetry,
		Summary: "re-apply a sync error's losing change as a new write"},
	{Name: "sync", MaxArgs: 0, run: func(c *call) error { return c.sync() },
		Summary: "sync now with every reachable partner"},
	{Name: "offline", MaxArgs: 0, run: runConnectivity,
		Summary: "stop using the network"},
	{Name: "online", MaxArgs: 0, run: runConnectivity,
		Summary: "use the network again (a sync round starts)"},
	{Name: "status", MaxArgs: 0, run: runStatus,
		Summary: "node status"},
	{Name: "peers", MaxArgs: 0, run: runPeers,
		Summary: "every node that synced with this one (a hub's devices): direction, last session, result, writes each way, pending, errors, skew, version"},
	{Name: "changes", MaxArgs: 0, run: runChanges, flags: changesFlags,
		Summary: "print the change feed (--since CURSOR, --follow)"},
	{Name: "reset", Args: "--yes", MaxArgs: 0, run: runReset, flags: resetFlags,
		Summary: "discard the local replica and resync it from the hub"},
	{Name: "compact", MaxArgs: 0, run: runCompact,
		Summary: "compact the store online; print its disk use before and after"},
}

// --- records ---

func putFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.BoolVar(&f.guess, "guess", false, "FIELD=VALUE is JSON where it parses, else a string (warns when it looks like broken JSON)")
	fs.BoolVar(&f.draft, "draft", false, "write a draft: kept on this device only (never synced) until replicad commit")
}

func runPut(c *call) error {
	a := c.args
	fields, err := parseFields(a[2:], c.guess, c.stderr)
	if err != nil {
		return err
	}
	if c.f.draft {
		r, err := c.c.PutDraft(c.ctx, a[0], a[1], fields)
		if err != nil {
			return err
		}
		return c.drafted(r.Record, r.Draft != nil, r)
	}
	r, err := c.c.Put(c.ctx, a[0], a[1], fields)
	if err != nil {
		return err
	}
	return c.record(r)
}

func getFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.BoolVar(&f.draft, "draft", false, "show the record with its draft's values laid over it")
	fs.BoolVar(&f.online, "online", false, "read the record live from the hub (not stored here; fails offline)")
}

func runGet(c *call) error {
	a := c.args
	switch {
	case c.f.draft && c.f.online:
		return usagef("get: --draft and --online do not go together")
	case c.f.draft:
		r, err := c.c.GetDraft(c.ctx, a[0], a[1])
		if err != nil {
			return err
		}
		return c.drafted(r.Record, r.Draft != nil, r)
	case c.f.online:
		r, err := c.c.GetOnline(c.ctx, a[0], a[1])
		if err != nil {
			return err
		}
		if c.json {
			return c.emit(r)
		}
		fmt.Fprintf(c.out, "online, from the hub at %s (not stored here)\n", r.HubAPI)
		return c.record(&r.Record)
	}
	r, err := c.c.Get(c.ctx, a[0], a[1])
	if err != nil {
		return err
	}
	return c.record(r)
}

func runDelete(c *call) error {
	a := c.args
	r, err := c.c.Delete(c.ctx, a[0], a[1])
	if err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(c.out, "deleted %s/%s\n", a[0], a[1])
		return nil
	}
	return c.record(r)
}

func listFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.IntVar(&f.limit, "limit", 0, "records per page (default 100)")
	fs.StringVar(&f.after, "after", "", "start after this id")
	fs.BoolVar(&f.online, "online", false, "list the hub's records live (not stored here; fails offline)")
}

func runList(c *call) error {
	table := c.args[0]
	var p *api.Page
	more := "more: replicad list "
	if c.f.online {
		op, err := c.c.ListOnline(c.ctx, table, c.f.after, c.f.limit)
		if err != nil {
			return err
		}
		if c.json {
			return c.emit(op)
		}
		fmt.Fprintf(c.out, "online, from the hub at %s (not stored here)\n", op.HubAPI)
		p, more = &op.Page, "more: replicad list --online "
	} else {
		var err error
		if p, err = c.c.List(c.ctx, table, c.f.after, c.f.limit); err != nil {
			return err
		}
		if c.json {
			return c.emit(p)
		}
	}
	rows := [][]string{{"ID", "FIELDS", "CONFLICTS"}}
	for _, r := range p.Records {
		rows = append(rows, []string{r.ID, fieldsText(r.Fields), conflictNames(r)})
	}
	c.table(rows)
	if p.Next != "" {
		fmt.Fprintf(c.out, "%s%s --after %s\n", more, table, p.Next)
	}
	return nil
}

// --- conflicts and sync errors ---

func runConflicts(c *call) error {
	cs, err := c.c.Conflicts(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"conflicts": cs})
	}
	rows := [][]string{{"TABLE", "ID", "FIELD", "#", "VALUE", "NODE", "WRITTEN"}}
	for _, x := range cs {
		if x.Kind == "duplicate" {
			rows = append(rows, []string{x.Table, x.ID, "(duplicate)", "", "same keys as " + strings.Join(x.With, ","), "", ""})
			continue
		}
		if x.Base != nil {
			rows = append(rows, []string{x.Table, x.ID, x.Field, "base", candText(*x.Base), x.Base.Node, hlcText(x.Base.HLC)})
		}
		for i, cand := range x.Candidates {
			rows = append(rows, []string{x.Table, x.ID, x.Field, strconv.Itoa(i), candText(cand), cand.Node, hlcText(cand.HLC)})
		}
	}
	c.table(rows)
	return nil
}

func resolveFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.IntVar(&f.pick, "pick", -1, "keep candidate `N` (0-based, as listed)")
	fs.StringVar(&f.value, "value", "", "write this `JSON` value instead")
	fs.StringVar(&f.text, "text", "", "write this `TEXT` (a string) instead")
}

func runResolve(c *call) error {
	a := c.args
	hasPick, hasValue, hasText := c.fs.Changed("pick"), c.fs.Changed("value"), c.fs.Changed("text")
	if n := btoi(hasPick) + btoi(hasValue) + btoi(hasText); n != 1 {
		return usagef("resolve: give exactly one of --pick N, --value JSON or --text TEXT")
	}
	var r *api.Record
	var err error
	switch {
	case hasPick:
		r, err = c.c.ResolvePick(c.ctx, a[0], a[1], a[2], c.f.pick)
	case hasValue:
		raw, jerr := jsonArg(c.f.value)
		if jerr != nil {
			return usagef("resolve: --value %s: %v; for text use --text", c.f.value, jerr)
		}
		r, err = c.c.ResolveValue(c.ctx, a[0], a[1], a[2], raw)
	default:
		r, err = c.c.ResolveValue(c.ctx, a[0], a[1], a[2], quoteJSON(c.f.text))
	}
	if err != nil {
		return err
	}
	return c.record(r)
}

func errorsFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.after, "after", "", "list entries after this id")
	fs.StringVar(&f.kind, "kind", "", "only entries of `KIND`: rejected (a change undone) or overridden (lww or client-wins kept another value)")
}

func runErrors(c *call) error {
	var aft uint64
	if c.f.after != "" {
		var err error
		if aft, err = strconv.ParseUint(c.f.after, 10, 64); err != nil {
			return usagef("errors: --after %q: want an error id", c.f.after)
		}
	}
	kind := c.f.kind
	if kind != "" && kind != "rejected" && kind != "overridden" {
		return usagef("errors: --kind %q: want rejected or overridden", kind)
	}
	es, err := c.c.SyncErrorsOfKind(c.ctx, aft, kind)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"errors": es})
	}
	rows := [][]string{{"ID", "TIME", "KIND", "RECORD", "POLICY", "LOSING", "WINNING", "RETRIED", "DETAIL"}}
	for _, x := range es {
		rows = append(rows, []string{strconv.FormatUint(x.ID, 10), timeText(x.Time), x.Kind, x.Table + "/" + x.Record, x.Policy, fieldsText(x.Losing), fieldsText(x.Winning), strconv.FormatBool(x.Retried), x.Detail})
	}
	c.table(rows)
	return nil
}

func runRetry(c *call) error {
	id, err := strconv.ParseUint(c.args[0], 10, 64)
	if err != nil {
		return usagef("retry: %q: want a sync-error id", c.args[0])
	}
	r, err := c.c.Retry(c.ctx, id)
	if err != nil {
		return err
	}
	return c.record(r)
}

// --- sync and the node ---

func runConnectivity(c *call) error {
	on := c.cmd.Name == "online"
	if err := c.c.SetOnline(c.ctx, on); err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]bool{"online": on})
	}
	fmt.Fprintln(c.out, c.cmd.Name)
	return nil
}

func runStatus(c *call) error {
	s, err := c.c.Status(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(s)
	}
	return c.status(s)
}

func runPeers(c *call) error {
	ps, err := c.c.Peers(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"peers": ps})
	}
	c.peers(ps)
	return nil
}

func changesFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.since, "since", "0", "cursor to start after (0: the beginning; now: only new changes)")
	fs.BoolVar(&f.follow, "follow", false, "keep streaming new changes")
}

func runChanges(c *call) error {
	if c.f.follow {
		return c.c.Follow(c.ctx, c.f.since, func(ch api.Change) error {
			if c.json {
				return c.emitLine(ch)
			}
			fmt.Fprintf(c.out, "%s\t%s/%s\t%s:%d\n", ch.Cursor, ch.Table, ch.ID, ch.Origin, ch.Seq)
			return nil
		})
	}
	chs, err := c.c.Changes(c.ctx, c.f.since, 0)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(chs)
	}
	rows := [][]string{{"CURSOR", "RECORD", "ORIGIN", "SEQ"}}
	for _, ch := range chs.Changes {
		rows = append(rows, []string{ch.Cursor, ch.Table + "/" + ch.ID, ch.Origin, strconv.FormatUint(ch.Seq, 10)})
	}
	c.table(rows)
	return nil
}

func resetFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.BoolVar(&f.yes, "yes", false, "confirm: discard the local replica")
}

func runReset(c *call) error {
	if !c.f.yes {
		return usagef("reset discards this node's replica (moved aside in its data directory) and resyncs it from the hub; confirm with --yes")
	}
	r, err := c.c.Reset(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(r)
	}
	fmt.Fprintf(c.out, "reset: new node %s, old store moved to %s\n", r.Node, r.MovedTo)
	return c.summary(&r.Sync)
}

func runCompact(c *call) error {
	r, err := c.c.Compact(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(r)
	}
	fmt.Fprintf(c.out, "compacted in %.1fs: %s before (sst %s, wal %s, other %s), %s after (sst %s, wal %s, other %s)\n",
		float64(r.DurationMs)/1000, mib(r.Before.Total), mib(r.Before.SST), mib(r.Before.WAL), mib(r.Before.Other),
		mib(r.After.Total), mib(r.After.SST), mib(r.After.WAL), mib(r.After.Other))
	return nil
}
