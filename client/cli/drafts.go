package cli

import (
	"fmt"

	"github.com/replicad/replicad/api"
	"github.com/spf13/pflag"
)

// Drafts and online reads (issue 9): put --draft, get --draft,
// get --online, list --online, drafts, commit, discard.

// modeFlags are the flags of those modes.
type modeFlags struct {
	draft, online bool
	table, after  string
	limit         int
}

func addModeFlags(cmd string, fs *pflag.FlagSet, m *modeFlags) {
	switch cmd {
	case "put":
		fs.BoolVar(&m.draft, "draft", false, "write a draft: kept on this device only (never synced) until replicad commit")
	case "get":
		fs.BoolVar(&m.draft, "draft", false, "show the record with its draft's values laid over it")
		fs.BoolVar(&m.online, "online", false, "read the record live from the hub (not stored here; fails offline)")
	case "list":
		fs.BoolVar(&m.online, "online", false, "list the hub's records live (not stored here; fails offline)")
	case "drafts":
		fs.StringVar(&m.table, "table", "", "only the drafts of this `TABLE`")
		fs.IntVar(&m.limit, "limit", 0, "drafts per page (default 100)")
		fs.StringVar(&m.after, "after", "", "start after this `TABLE/ID`")
	}
}

// modes runs the commands and flags of drafts and online reads; handled
// is false for everything else.
func (e *env) modes(cmd string, a []string, m *modeFlags, limit int, after string) (handled bool, err error) {
	if m.draft && m.online {
		return true, usagef("%s: --draft and --online do not go together", cmd)
	}
	switch {
	case cmd == "put" && m.draft:
		if len(a) < 3 {
			return true, usagef("usage: replicad put --draft [--guess] TABLE ID " + fieldsUsage)
		}
		fields, err := parseFields(a[2:], e.guess, e.stderr)
		if err != nil {
			return true, err
		}
		r, err := e.c.PutDraft(e.ctx, a[0], a[1], fields)
		if err != nil {
			return true, err
		}
		return true, e.drafted(r.Record, r.Draft != nil, r)
	case cmd == "get" && (m.draft || m.online):
		if len(a) != 2 {
			return true, usagef("usage: replicad get [--draft | --online] TABLE ID")
		}
		if m.draft {
			r, err := e.c.GetDraft(e.ctx, a[0], a[1])
			if err != nil {
				return true, err
			}
			return true, e.drafted(r.Record, r.Draft != nil, r)
		}
		r, err := e.c.GetOnline(e.ctx, a[0], a[1])
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(r)
		}
		fmt.Fprintf(e.out, "online, from the hub at %s (not stored here)\n", r.HubAPI)
		return true, e.record(&r.Record)
	case cmd == "list" && m.online:
		if len(a) != 1 {
			return true, usagef("usage: replicad list --online TABLE [--limit N] [--after ID]")
		}
		p, err := e.c.ListOnline(e.ctx, a[0], after, limit)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(p)
		}
		fmt.Fprintf(e.out, "online, from the hub at %s (not stored here)\n", p.HubAPI)
		rows := [][]string{{"ID", "FIELDS", "CONFLICTS"}}
		for _, r := range p.Records {
			rows = append(rows, []string{r.ID, fieldsText(r.Fields), conflictNames(r)})
		}
		e.table(rows)
		if p.Next != "" {
			fmt.Fprintf(e.out, "more: replicad list --online %s --after %s\n", a[0], p.Next)
		}
		return true, nil
	case cmd == "drafts":
		if len(a) != 0 {
			return true, usagef("usage: replicad drafts [--table T] [--limit N] [--after TABLE/ID]")
		}
		p, err := e.c.Drafts(e.ctx, m.table, m.after, m.limit)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(p)
		}
		rows := [][]string{{"TABLE", "ID", "FIELDS", "UPDATED", "RECORD", "RECORD CHANGED"}}
		for _, d := range p.Drafts {
			rec := "new"
			if d.RecordExists {
				rec = "exists"
			}
			rows = append(rows, []string{d.Table, d.ID, fieldsText(d.Fields), d.Updated, rec, fmt.Sprint(d.Changed)})
		}
		e.table(rows)
		if p.Next != "" {
			fmt.Fprintf(e.out, "more: replicad drafts --after %s\n", p.Next)
		}
		return true, nil
	case cmd == "commit":
		if len(a) != 2 {
			return true, usagef("usage: replicad commit TABLE ID")
		}
		r, err := e.c.CommitDraft(e.ctx, a[0], a[1])
		if err != nil {
			return true, err
		}
		return true, e.record(r)
	case cmd == "discard":
		if len(a) != 2 {
			return true, usagef("usage: replicad discard TABLE ID")
		}
		d, err := e.c.DiscardDraft(e.ctx, a[0], a[1])
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(map[string]any{"discarded": d})
		}
		fmt.Fprintf(e.out, "discarded the draft of %s/%s (%s)\n", d.Table, d.ID, fieldsText(d.Fields))
		return true, nil
	}
	return false, nil
}

// drafted prints a record with its draft laid over it.
func (e *env) drafted(r api.Record, hasDraft bool, full any) error {
	if e.json {
		return e.emit(full)
	}
	if err := e.record(&r); err != nil {
		return err
	}
	if hasDraft {
		fmt.Fprintln(e.out, "(draft values shown: kept on this device only until replicad commit)")
	}
	return nil
}
