package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// The work that only runs online: duplicates, dedupe, workflows,
// deliveries.

func duplicatesFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.BoolVar(&f.all, "all", false, "resolved ones too")
}

func runDuplicates(c *call) error {
	ds, err := c.c.Duplicates(c.ctx, c.f.all)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"duplicates": ds})
	}
	rows := [][]string{{"TABLE", "ID", "DUPLICATE OF", "KEYS", "STATUS", "DETECTED"}}
	for _, d := range ds {
		var keys []string
		for k, v := range d.Keys {
			keys = append(keys, k+"="+string(v))
		}
		sort.Strings(keys)
		rows = append(rows, []string{d.Table, d.ID, strings.Join(d.With, ","), strings.Join(keys, " "), d.Status, timeText(d.Detected)})
	}
	c.table(rows)
	return nil
}

func dedupeFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.with, "with", "", "the other record `ID` (merge: the survivor; default: the only one it matched)")
	fs.StringVar(&f.prefer, "prefer", "", "merge: whose values win where both records have one: existing (default) or new")
}

func runDedupe(c *call) error {
	a := c.args
	res, err := c.c.ResolveDuplicate(c.ctx, a[0], a[1], a[2], c.f.with, c.f.prefer)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(res)
	}
	fmt.Fprintf(c.out, "%s/%s: %s\n", a[0], a[1], res.Duplicate.Status)
	if res.Record != nil {
		return c.record(res.Record)
	}
	return nil
}

func runWorkflows(c *call) error {
	ws, err := c.c.Workflows(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"workflows": ws})
	}
	rows := [][]string{{"NAME", "TABLE", "HOOK", "STATE", "CURSOR", "FEED", "DELIVERED", "FAILED", "LAST ERROR"}}
	for _, w := range ws {
		hook := w.Webhook
		if hook == "" {
			hook = strings.Join(w.Command, " ")
		}
		rows = append(rows, []string{w.Name, w.Table, hook, w.State, w.Cursor, w.FeedHead,
			strconv.FormatUint(w.Delivered, 10), strconv.FormatUint(w.Failed, 10), w.LastError})
	}
	c.table(rows)
	return nil
}

func deliveriesFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.before, "before", "", "list outcomes before this `CURSOR`")
	fs.IntVar(&f.limit, "limit", 0, "outcomes per page (default 100)")
}

func runDeliveries(c *call) error {
	name := c.args[0]
	ds, next, err := c.c.Deliveries(c.ctx, name, c.f.before, c.f.limit)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(map[string]any{"deliveries": ds, "next": next})
	}
	rows := [][]string{{"CURSOR", "TABLE", "ID", "STATUS", "ATTEMPTS", "AT", "ERROR"}}
	for _, d := range ds {
		rows = append(rows, []string{d.Cursor, d.Table, d.ID, d.Status, strconv.Itoa(d.Attempts), timeText(d.At), d.Error})
	}
	c.table(rows)
	if next != "" {
		fmt.Fprintf(c.out, "more: replicad deliveries %s --before %s\n", name, next)
	}
	return nil
}
