package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// The work that only runs online (issue 9): duplicates, dedupe,
// workflows, deliveries.

type onlineFlags struct {
	all          bool
	with, prefer string
	before       string
	limit        int
}

func addOnlineFlags(cmd string, fs *pflag.FlagSet, o *onlineFlags) {
	switch cmd {
	case "duplicates":
		fs.BoolVar(&o.all, "all", false, "resolved ones too")
	case "dedupe":
		fs.StringVar(&o.with, "with", "", "the other record `ID` (merge: the survivor; default: the only one it matched)")
		fs.StringVar(&o.prefer, "prefer", "", "merge: whose values win where both records have one: existing (default) or new")
	case "deliveries":
		fs.StringVar(&o.before, "before", "", "list outcomes before this `CURSOR`")
		fs.IntVar(&o.limit, "limit", 0, "outcomes per page (default 100)")
	}
}

// online runs those commands; handled is false for every other.
func (e *env) online(cmd string, a []string, o *onlineFlags) (handled bool, err error) {
	switch cmd {
	case "duplicates":
		if len(a) != 0 {
			return true, usagef("usage: replicad duplicates [--all]")
		}
		ds, err := e.c.Duplicates(e.ctx, o.all)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(map[string]any{"duplicates": ds})
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
		e.table(rows)
		return true, nil
	case "dedupe":
		if len(a) != 3 {
			return true, usagef("usage: replicad dedupe TABLE ID keep|merge|discard [--with ID] [--prefer existing|new]")
		}
		res, err := e.c.ResolveDuplicate(e.ctx, a[0], a[1], a[2], o.with, o.prefer)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(res)
		}
		fmt.Fprintf(e.out, "%s/%s: %s\n", a[0], a[1], res.Duplicate.Status)
		if res.Record != nil {
			return true, e.record(res.Record)
		}
		return true, nil
	case "workflows":
		if len(a) != 0 {
			return true, usagef("usage: replicad workflows")
		}
		ws, err := e.c.Workflows(e.ctx)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(map[string]any{"workflows": ws})
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
		e.table(rows)
		return true, nil
	case "deliveries":
		if len(a) != 1 {
			return true, usagef("usage: replicad deliveries WORKFLOW [--limit N] [--before CURSOR]")
		}
		ds, next, err := e.c.Deliveries(e.ctx, a[0], o.before, o.limit)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(map[string]any{"deliveries": ds, "next": next})
		}
		rows := [][]string{{"CURSOR", "TABLE", "ID", "STATUS", "ATTEMPTS", "AT", "ERROR"}}
		for _, d := range ds {
			rows = append(rows, []string{d.Cursor, d.Table, d.ID, d.Status, strconv.Itoa(d.Attempts), timeText(d.At), d.Error})
		}
		e.table(rows)
		if next != "" {
			fmt.Fprintf(e.out, "more: replicad deliveries %s --before %s\n", a[0], next)
		}
		return true, nil
	}
	return false, nil
}
