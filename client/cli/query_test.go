package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
)

// stubAgent answers the query routes as the agent's contract says and
// records the query strings it was asked.
func stubAgent(t *testing.T, h http.HandlerFunc) (addr string, asked func() []string) {
	var mu sync.Mutex
	var qs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		qs = append(qs, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), qs...)
	}
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func record(id, fields string) api.Record {
	var f map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fields), &f); err != nil {
		panic(err)
	}
	return api.Record{Table: "jobs", ID: id, Fields: f}
}

// runCLI runs a command against addr, stdout a terminal or not.
func runCLI(ctx context.Context, addr string, term bool, stdout *bytes.Buffer, args ...string) (stderr string, code int) {
	var e bytes.Buffer
	code = report(runOn(ctx, append(args, "--addr", addr), stdout, &e, term), &e)
	return e.String(), code
}

// TestQueryCommand: replicad query sends its flags as the query's
// parameters; on a terminal it prints a table, the plan and the command
// of the next page; piped, the page as JSON; --count the count.
func TestQueryCommand(t *testing.T) {
	idx := "by_owner"
	addr, asked := stubAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("count") == "true" {
			answer(w, 200, api.Count{Count: 12})
			return
		}
		answer(w, 200, api.Page{Records: []api.Record{record("j2", `{"owner":"ana","prio":3}`), record("j1", `{"owner":"ana","prio":2}`)},
			Next: "CUR/2", Plan: &api.Plan{Index: &idx, Examined: 2}})
	})
	ctx := context.Background()
	var out bytes.Buffer
	if errOut, code := runCLI(ctx, addr, true, &out, "query", "jobs", "--where", "owner == 'ana'", "--order", "-prio", "--limit", "2", "--explain"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `ID  FIELDS
j2  owner="ana" prio=3
j1  owner="ana" prio=2
plan: index by_owner, 2 records examined
more: replicad query jobs --where 'owner == '\''ana'\''' --order -prio --limit 2 --explain --addr ` + addr + ` --cursor CUR/2
`
	if out.String() != want {
		t.Errorf("terminal output:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if errOut, code := runCLI(ctx, addr, true, &out, "query", "jobs", "--fields", "prio,owner", "--cursor", "CUR/2", "--draft"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out.String(), "ID  PRIO  OWNER\nj2  3     \"ana\"\n") {
		t.Errorf("projected table:\n%s", out.String())
	}
	out.Reset()
	if _, code := runCLI(ctx, addr, false, &out, "query", "jobs", "--online"); code != 0 {
		t.Fatal(code)
	}
	var p api.Page
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.Next != "CUR/2" || len(p.Records) != 2 || *p.Plan.Index != "by_owner" {
		t.Errorf("JSON output %q: %v", out.String(), err)
	}
	out.Reset()
	if _, code := runCLI(ctx, addr, false, &out, "query", "jobs", "--count", "--where", "prio > 1"); code != 0 || strings.TrimSpace(out.String()) != `{"count":12}` {
		t.Errorf("count: exit %d %q", code, out.String())
	}
	out.Reset()
	if _, code := runCLI(ctx, addr, true, &out, "view", "mine", "--count"); code != 0 || out.String() != "12\n" {
		t.Errorf("view --count on a terminal: exit %d %q", code, out.String())
	}
	want2 := []string{
		"/v1/tables/jobs/records?" + url.Values{"where": {"owner == 'ana'"}, "order": {"-prio"}, "limit": {"2"}, "explain": {"true"}}.Encode(),
		"/v1/tables/jobs/records?" + url.Values{"fields": {"prio,owner"}, "cursor": {"CUR/2"}, "draft": {"true"}, "where": {""}}.Encode(),
		"/v1/tables/jobs/records?online=true&where=",
		"/v1/tables/jobs/records?" + url.Values{"count": {"true"}, "where": {"prio > 1"}}.Encode(),
		"/v1/views/mine?count=true",
	}
	if got := asked(); strings.Join(got, "\n") != strings.Join(want2, "\n") {
		t.Errorf("asked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want2, "\n"))
	}
}

// TestQueryRefusedIsUsage: the agent's 400 is one line on stderr and
// exit 2, like the CLI's own usage errors; --watch with --count is one
// too, asking nothing; another error of the agent is exit 1.
func TestQueryRefusedIsUsage(t *testing.T) {
	addr, asked := stubAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/views/gone" {
			answer(w, 404, api.Error{Error: `no view "gone"`})
			return
		}
		answer(w, 400, api.Error{Error: "where: at offset 6: Syntax error: mismatched input '<EOF>'\n | prio >"})
	})
	ctx := context.Background()
	var out bytes.Buffer
	errOut, code := runCLI(ctx, addr, false, &out, "query", "jobs", "--where", "prio >")
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "replicad: query: where: at offset 6: Syntax error") || out.Len() != 0 {
		t.Errorf("refused query: exit %d, stderr %q, stdout %q", code, errOut, out.String())
	}
	errOut, code = runCLI(ctx, addr, false, &out, "view", "x", "--watch")
	if code != 2 || !strings.Contains(errOut, "offset 6") {
		t.Errorf("refused watch: exit %d, stderr %q", code, errOut)
	}
	n := len(asked())
	errOut, code = runCLI(ctx, addr, false, &out, "query", "jobs", "--watch", "--count")
	if code != 2 || !strings.Contains(errOut, "--watch and --count do not go together") || len(asked()) != n {
		t.Errorf("--watch --count: exit %d, stderr %q", code, errOut)
	}
	errOut, code = runCLI(ctx, addr, false, &out, "view", "gone")
	if code != 1 || !strings.Contains(errOut, `no view "gone"`) {
		t.Errorf("unknown view: exit %d, stderr %q", code, errOut)
	}
}

// eventsAgent serves the live view "open" (order -prio): the given
// events over server-sent events, then holds the stream open.
func eventsAgent(t *testing.T, events ...api.WatchEvent) string {
	addr, _ := stubAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/views" {
			answer(w, 200, api.ViewList{Views: []api.View{{Name: "open", Table: "jobs", Where: "status == 'open'", Order: []string{"-prio"}, Count: 2}}})
			return
		}
		if r.URL.Path != "/v1/views/open" || r.URL.Query().Get("watch") != "true" || r.Header.Get("Accept") != "text/event-stream" {
			answer(w, 400, api.Error{Error: "not the watch of view open"})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range events {
			b, _ := json.Marshal(ev)
			if ev.ID != "" {
				fmt.Fprintf(w, "id: %s\n", ev.ID)
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	return addr
}

// cancelAfter is a writer that cancels when it has taken n writes (the
// interrupt a user gives with Ctrl-C).
type cancelAfter struct {
	bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	n, err := c.Buffer.Write(p)
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return n, err
}

var liveEvents = []api.WatchEvent{
	{Type: "result", ID: "e1", Records: []api.Record{record("j1", `{"prio":1}`), record("j2", `{"prio":2}`)}},
	{Type: "add", ID: "e2", RecordID: "j3", Record: &api.Record{Table: "jobs", ID: "j3", Fields: map[string]json.RawMessage{"prio": json.RawMessage("5")}}},
	{Type: "remove", ID: "e3", RecordID: "j2"},
}

// TestViewWatchJSONLines: piped, view --watch prints one api.WatchEvent
// per line; an interrupt ends it with exit 0.
func TestViewWatchJSONLines(t *testing.T) {
	addr := eventsAgent(t, liveEvents...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &cancelAfter{n: 3, cancel: cancel}
	var stderr bytes.Buffer
	code := report(runOn(ctx, []string{"view", "open", "--watch", "--addr", addr}, w, &stderr, false), &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), w.String())
	}
	for i, l := range lines {
		var ev api.WatchEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type != liveEvents[i].Type || ev.ID != liveEvents[i].ID {
			t.Errorf("line %d %q: %v; want the %s event", i, l, err, liveEvents[i].Type)
		}
	}
}

// TestViewWatchTerminal: on a terminal, view --watch draws the result
// as a table in the view's order under a status line, and redraws it in
// place (cursor up over the last drawing, clear below) at each event.
func TestViewWatchTerminal(t *testing.T) {
	addr := eventsAgent(t, liveEvents...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &cancelAfter{n: 5, cancel: cancel} // a drawing, then (redraw, drawing) twice
	var stderr bytes.Buffer
	code := report(runOn(ctx, []string{"view", "open", "--watch", "--addr", addr}, w, &stderr, true), &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	frames := regexp.MustCompile(`\x1b\[(\d+)F\x1b\[J`).Split(w.String(), -1)
	ups := regexp.MustCompile(`\x1b\[(\d+)F\x1b\[J`).FindAllStringSubmatch(w.String(), -1)
	if len(frames) != 3 || len(ups) != 2 {
		t.Fatalf("want 3 drawings, got %d:\n%q", len(frames), w.String())
	}
	for i, u := range ups { // each redraw goes up over the whole last drawing
		if want := fmt.Sprint(strings.Count(frames[i], "\n")); u[1] != want {
			t.Errorf("redraw %d goes up %s lines, the drawing had %s", i+1, u[1], want)
		}
	}
	wantFirst := "ID  FIELDS\nj2  prio=2\nj1  prio=1\nlive: 2 records; last event: result at "
	wantLast := "ID  FIELDS\nj3  prio=5\nj1  prio=1\nlive: 2 records; last event: remove j2 at "
	if !strings.HasPrefix(frames[0], wantFirst) || !strings.HasPrefix(frames[2], wantLast) || !strings.Contains(frames[2], "(id e3); Ctrl-C to stop\n") {
		t.Errorf("drawings:\n%s\n---\n%s\nwant prefixes:\n%s\n---\n%s", frames[0], frames[2], wantFirst, wantLast)
	}
	if !strings.Contains(frames[1], "j3  prio=5\nj2  prio=2\nj1  prio=1\nlive: 3 records; last event: add j3") {
		t.Errorf("after the add:\n%s", frames[1])
	}
}

// TestViewsCommand: replicad views lists each view with its count, or
// the error that keeps it from running here.
func TestViewsCommand(t *testing.T) {
	addr, _ := stubAgent(t, func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, api.ViewList{Views: []api.View{
			{Name: "mine", Table: "jobs", Where: "owner == device.user", Order: []string{"-prio", "start"}, Count: 3},
			{Name: "theirs", Table: "jobs", Where: "owner == device.team", Error: "no attribute device.team"}}})
	})
	var out bytes.Buffer
	if _, code := runCLI(context.Background(), addr, true, &out, "views"); code != 0 {
		t.Fatal(code)
	}
	want := `NAME    TABLE  WHERE                 ORDER        RECORDS HERE
mine    jobs   owner == device.user  -prio,start  3
theirs  jobs   owner == device.team               error: no attribute device.team
`
	if out.String() != want {
		t.Errorf("views:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestCutLines: a live table's lines are cut to the terminal's width,
// so that none wraps and the redraw goes up exactly over the drawing.
func TestCutLines(t *testing.T) {
	if got := string(cutLines([]byte("abcdef\nab\nélan vital\n"), 4)); got != "abcd\nab\nélan\n" {
		t.Errorf("cutLines: %q", got)
	}
}

// TestWatchAsksOrderFields: a live table with --fields asks for the
// order's fields too (it sorts by them) and shows only those asked.
func TestWatchAsksOrderFields(t *testing.T) {
	if got := withOrderFields([]string{"title"}, []string{"-prio", "title", "id"}); !slices.Equal(got, []string{"title", "prio"}) {
		t.Errorf("withOrderFields: %v", got)
	}
	addr, asked := stubAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		b, _ := json.Marshal(api.WatchEvent{Type: "result", ID: "e1", Records: []api.Record{record("j1", `{"prio":1,"title":"a"}`), record("j2", `{"prio":2,"title":"b"}`)}})
		fmt.Fprintf(w, "id: e1\nevent: result\ndata: %s\n\n", b)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &cancelAfter{n: 1, cancel: cancel}
	var stderr bytes.Buffer
	if code := report(runOn(ctx, []string{"query", "jobs", "--order", "-prio", "--fields", "title", "--watch", "--addr", addr}, w, &stderr, true), &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	q := asked()
	if len(q) != 1 || !strings.Contains(q[0], "fields=title%2Cprio&") || !strings.HasPrefix(w.String(), "ID  TITLE\nj2  \"b\"\nj1  \"a\"\n") {
		t.Errorf("asked %q, drew:\n%s", q, w.String())
	}
}

// TestRecordRowsConflicts: a table of records names each record's
// conflicted fields in a column of its own, there only when one has.
func TestRecordRowsConflicts(t *testing.T) {
	r := record("j1", `{"prio":1}`)
	r.Conflicts = map[string][]api.Candidate{"title": {{}, {}}}
	got := recordRows([]api.Record{r, record("j2", `{"prio":2}`)}, []string{"prio"})
	want := [][]string{{"ID", "PRIO", "CONFLICTS"}, {"j1", "1", "title"}, {"j2", "2", ""}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if got := recordRows([]api.Record{record("j2", `{"prio":2}`)}, nil); fmt.Sprint(got) != fmt.Sprint([][]string{{"ID", "FIELDS"}, {"j2", "prio=2"}}) {
		t.Errorf("rows without conflicts %q", got)
	}
}
