package cli

import (
	"fmt"

	"github.com/replicad/replicad/api"
	"github.com/spf13/pflag"
)

// Drafts: put --draft and get --draft (commands.go), drafts, commit,
// discard.

func draftsFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.table, "table", "", "only the drafts of this `TABLE`")
	fs.IntVar(&f.limit, "limit", 0, "drafts per page (default 100)")
	fs.StringVar(&f.after, "after", "", "start after this `TABLE/ID`")
}

func runDrafts(c *call) error {
	p, err := c.c.Drafts(c.ctx, c.f.table, c.f.after, c.f.limit)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(p)
	}
	rows := [][]string{{"TABLE", "ID", "FIELDS", "UPDATED", "RECORD", "RECORD CHANGED"}}
	for _, d := range p.Drafts {
		rec := "new"
		if d.RecordExists {
			rec = "exists"
		}
		rows = append(rows, []string{d.Table, d.ID, fieldsText(d.Fields), d.Updated, rec, fmt.Sprint(d.Changed)})
	}
	c.table(rows)
	if p.Next != "" {
		fmt.Fprintf(c.out, "more: replicad drafts --after %s\n", p.Next)
	}
	return nil
}

func runCommit(c *call) error {
	r, err := c.c.CommitDraft(c.ctx, c.args[0], c.args[1])
	if err != nil {
		return err
	}
	return c.record(r)
}

func runDiscard(c *call) error {
	d, err := c.c.DiscardDraft(c.ctx, c.args[0], c.args[1])
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"discarded": d})
	}
	fmt.Fprintf(c.out, "discarded the draft of %s/%s (%s)\n", d.Table, d.ID, fieldsText(d.Fields))
	return nil
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
