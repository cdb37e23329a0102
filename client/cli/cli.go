package cli

import (
	"context"
	"encoding/json"
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
	"golang.org/x/sys/unix"
)

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
