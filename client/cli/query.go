package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/client"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Queries and views: query, views, view (--watch: live).

func queryFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.StringVar(&f.where, "where", "", "select records: a `CEL` expression over their fields (prio >= 2 && owner == 'ana')")
	fs.StringVar(&f.order, "order", "", "order by these `FIELDS`, comma-separated, - for descending (-prio,start); ties by id")
	viewFlags(fs, f)
}

// viewFlags are the flags query and view share.
func viewFlags(fs *pflag.FlagSet, f *flagValues) {
	fs.IntVar(&f.limit, "limit", 0, "records per page (default 100, at most 10000)")
	fs.StringVar(&f.cursor, "cursor", "", "the next page: the `CURSOR` the previous one showed")
	fs.StringVar(&f.fields, "fields", "", "show only these `FIELDS`, comma-separated")
	fs.BoolVar(&f.count, "count", false, "print how many records match (--limit and --cursor do not apply)")
	fs.BoolVar(&f.explain, "explain", false, "show the plan: the index used (or a scan), records examined")
	fs.BoolVar(&f.draft, "draft", false, "lay each record's draft over it")
	fs.BoolVar(&f.online, "online", false, "ask the hub live (not stored here; fails offline)")
	fs.BoolVar(&f.watch, "watch", false, "keep the result live: a table updated in place on a terminal, one JSON event per line when piped (Ctrl-C stops)")
}

// query is the client query of the command's flags.
func (c *call) query() (client.Query, error) {
	f := c.f
	q := client.Query{Where: f.where, Limit: f.limit, Cursor: f.cursor, Explain: f.explain, Draft: f.draft, Online: f.online}
	if f.order != "" {
		q.Order = strings.Split(f.order, ",")
	}
	if f.fields != "" {
		q.Fields = strings.Split(f.fields, ",")
	}
	if f.watch {
		for _, x := range []string{"count", "cursor", "explain"} {
			if c.fs.Changed(x) {
				return q, usagef("%s: --watch and --%s do not go together", c.cmd.Name, x)
			}
		}
	}
	if f.count && c.fs.Changed("cursor") {
		return q, usagef("%s: --count counts every match: --cursor does not apply", c.cmd.Name)
	}
	return q, nil
}

// refused turns the agent's refusal of a query (400: the option at
// fault, the offset in it, what is wrong) into a usage error (exit 2).
func (c *call) refused(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return usagef("%s: %s", c.cmd.Name, ae.Message)
	}
	return err
}

func runQuery(c *call) error {
	q, err := c.query()
	if err != nil {
		return err
	}
	q.Table = c.args[0]
	return c.refused(c.answer(q, q.Order))
}

func runView(c *call) error {
	q, err := c.query()
	if err != nil {
		return err
	}
	q.View = c.args[0]
	var order []string
	if c.f.watch && !c.json { // the table keeps the view's order
		vs, err := c.c.Views(c.ctx)
		if err != nil {
			return err
		}
		found := false
		for _, v := range vs {
			if v.Name == q.View {
				order, found = v.Order, true
			}
		}
		if !found {
			return fmt.Errorf("view: no view %q here (replicad views lists them)", q.View)
		}
	}
	return c.refused(c.answer(q, order))
}

// answer prints q's page, count or (--watch) live result.
func (c *call) answer(q client.Query, order []string) error {
	switch {
	case c.f.watch:
		return c.watch(q, order)
	case c.f.count:
		n, err := c.c.Count(c.ctx, q)
		if err != nil {
			return err
		}
		if c.json {
			return c.emit(api.Count{Count: n})
		}
		fmt.Fprintln(c.out, n)
		return nil
	}
	p, err := c.c.Query(c.ctx, q)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(p)
	}
	c.table(recordRows(p.Records, q.Fields))
	if p.Plan != nil {
		fmt.Fprintln(c.out, planText(p.Plan))
	}
	if p.Next != "" {
		fmt.Fprintf(c.out, "more: %s\n", c.again("cursor", p.Next))
	}
	return nil
}

// recordRows are the rows of a table of records: a column per field
// with a projection, else the fields as NAME=JSON; then, when a record
// has some, the conflicted fields.
func recordRows(rs []api.Record, fields []string) [][]string {
	conflicts := slices.ContainsFunc(rs, func(r api.Record) bool { return len(r.Conflicts) > 0 })
	head := []string{"ID", "FIELDS"}
	if len(fields) > 0 {
		head = head[:1]
		for _, f := range fields {
			head = append(head, strings.ToUpper(f))
		}
	}
	if conflicts {
		head = append(head, "CONFLICTS")
	}
	rows := [][]string{head}
	for _, r := range rs {
		row := []string{r.ID}
		if len(fields) == 0 {
			row = append(row, fieldsText(r.Fields))
		}
		for _, f := range fields {
			row = append(row, string(r.Fields[f]))
		}
		if conflicts {
			row = append(row, conflictNames(r))
		}
		rows = append(rows, row)
	}
	return rows
}

func planText(p *api.Plan) string {
	how := "no index (a scan of the table)"
	if p.Index != nil {
		how = "index " + *p.Index
	}
	return fmt.Sprintf("plan: %s, %d records examined", how, p.Examined)
}

// again is the command line that was run with flag name set to value
// (the next page's).
func (c *call) again(name, value string) string {
	parts := []string{"replicad", c.cmd.Name}
	for _, a := range c.args {
		parts = append(parts, shellQuote(a))
	}
	c.fs.Visit(func(f *pflag.Flag) {
		if f.Name == name {
			return
		}
		if f.Value.Type() == "bool" {
			parts = append(parts, "--"+f.Name)
			return
		}
		parts = append(parts, "--"+f.Name, shellQuote(f.Value.String()))
	})
	return strings.Join(append(parts, "--"+name, shellQuote(value)), " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// watch follows q live until Ctrl-C (exit 0): JSON lines of api.WatchEvent
// when piped, else the result as a table redrawn in place (in order, the
// query's or the view's) under a status line naming the last event.
func (c *call) watch(q client.Query, order []string) error {
	live := client.NewLiveResult(order)
	shown := q.Fields
	if !c.json && len(shown) > 0 { // the table is kept in order by the order's fields: ask for them too
		q.Fields = withOrderFields(shown, order)
	}
	drawn := 0 // lines of the last drawing
	err := c.c.Watch(c.ctx, q, "", func(ev api.WatchEvent) error {
		if c.json {
			return c.emitLine(ev)
		}
		live.Apply(ev)
		var b bytes.Buffer
		rs := live.Records()
		rows := recordRows(rs, shown)
		h, w := termSize(c.out)
		if h > 3 && len(rows) > h-2 { // the status line stays on screen
			keep := h - 3 // the header and records, then a row saying how many more
			rows = append(rows[:keep], []string{fmt.Sprintf("(%d more)", len(rows)-keep)})
		}
		(&env{out: &b}).table(rows)
		fmt.Fprintln(&b, watchStatus(ev, live.Len(), time.Now()))
		frame := b.Bytes()
		if w > 1 { // a line the terminal wraps would throw the redraw's count off
			frame = cutLines(frame, w-1)
		}
		if drawn > 0 {
			fmt.Fprintf(c.out, "\033[%dF\033[J", drawn) // up to the first line drawn, and clear below
		}
		drawn = bytes.Count(frame, []byte("\n"))
		_, err := c.out.Write(frame)
		return err
	})
	if c.ctx.Err() != nil { // Ctrl-C
		return nil
	}
	return err
}

// withOrderFields is fields and then the fields of order it lacks.
func withOrderFields(fields, order []string) []string {
	out := append([]string(nil), fields...)
	for _, o := range order {
		name := strings.TrimPrefix(o, "-")
		if name != "id" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// watchStatus is the status line under a live table.
func watchStatus(ev api.WatchEvent, n int, at time.Time) string {
	what := ev.Type
	switch ev.Type {
	case "add", "change", "remove":
		what += " " + ev.RecordID
	case "overflow":
		what += " (fell behind: resuming)"
		if ev.Error != "" {
			what += ": " + ev.Error
		}
	case "reset":
		what += " (could not resume: the whole result again)"
	}
	s := fmt.Sprintf("live: %d record%s; last event: %s at %s", n, plural(n), what, at.Local().Format("15:04:05"))
	if ev.ID != "" {
		s += " (id " + ev.ID + ")"
	}
	return s + "; Ctrl-C to stop"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// termSize is the height and width of the terminal out is, or 0, 0.
func termSize(out any) (rows, cols int) {
	f, ok := out.(*os.File)
	if !ok {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Row), int(ws.Col)
}

// cutLines cuts every line of b to at most width characters.
func cutLines(b []byte, width int) []byte {
	var out []byte
	for _, line := range strings.SplitAfter(string(b), "\n") {
		text, nl := strings.CutSuffix(line, "\n")
		if r := []rune(text); len(r) > width {
			text = string(r[:width])
		}
		out = append(out, text...)
		if nl {
			out = append(out, '\n')
		}
	}
	return out
}

func runViews(c *call) error {
	vs, err := c.c.Views(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(api.ViewList{Views: vs})
	}
	rows := [][]string{{"NAME", "TABLE", "WHERE", "ORDER", "RECORDS HERE"}}
	for _, v := range vs {
		n := strconv.Itoa(v.Count)
		if v.Error != "" {
			n = "error: " + v.Error
		}
		rows = append(rows, []string{v.Name, v.Table, v.Where, strings.Join(v.Order, ","), n})
	}
	c.table(rows)
	return nil
}
