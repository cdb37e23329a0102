package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/replicaopt"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/replication"
)

// replicaCore is the QueryCore of a real replica (what the agent's
// implements over the replica it holds).
type replicaCore struct {
	r      *replica.Replica
	n      *node.Node
	reader Reader // for requests with the X-Test-Reader header
}

func (c *replicaCore) With(fn func(n *node.Node) (any, error)) (any, error) { return fn(c.n) }
func (c *replicaCore) GuardWrite(string) error                              { return nil }
func (c *replicaCore) Reader(r *http.Request) Reader {
	if r.Header.Get("X-Test-Reader") != "" {
		return c.reader
	}
	return nil
}
func (c *replicaCore) DeviceAttrs() map[string]string { return map[string]string{"user": "me"} }
func (c *replicaCore) Views() []replica.View          { return c.r.Views() }
func (c *replicaCore) WatchFrom(ctx context.Context, q replica.Query, last string) (<-chan replica.Event, error) {
	return c.r.WatchFrom(ctx, q, last)
}

// fieldReader is the agent's reader: authz's, which tells the fields it
// may read.
type fieldReader struct{ *authz.Reader }

func (f fieldReader) FieldAllowed(table, field string) bool {
	return f.Limit.FieldAllowed(table, field)
}

// openReplica opens a replica and its node (the agent's seam).
func openReplica(cfg replica.Config) (*replica.Replica, *node.Node, error) {
	opt := &replicaopt.Options{}
	r, err := replica.Open(replicaopt.NewContext(context.Background(), opt), cfg)
	if err != nil {
		return nil, nil, err
	}
	return r, opt.Parts.Node, nil
}

type queryEnv struct {
	t    *testing.T
	r    *replica.Replica
	n    *node.Node
	core *replicaCore
	qs   *Queries
	srv  *httptest.Server
}

func newQueryEnv(t *testing.T, maxWatches int, cfg replica.Config) *queryEnv {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.NoSync = true
	r, n, err := openReplica(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	core := &replicaCore{r: r, n: n}
	qs := NewQueries(core, maxWatches)
	rt := NewRouter(nil)
	modes := Modes{Records: Records{Core: core}}
	rt.Handle("GET /v1/tables/{table}/records", qs.List(modes))
	rt.Handle("GET /v1/tables/{table}/records/{id}", modes.Get)
	rt.Handle("GET /v1/views", qs.ListViews)
	rt.Handle("GET /v1/views/{name}", qs.View)
	srv := httptest.NewServer(rt.Handler(1 << 20))
	t.Cleanup(srv.Close)
	t.Cleanup(qs.Close)
	return &queryEnv{t: t, r: r, n: n, core: core, qs: qs, srv: srv}
}

func (e *queryEnv) put(table, id string, fields map[string]any) {
	e.t.Helper()
	if err := e.r.Put(context.Background(), table, id, fields); err != nil {
		e.t.Fatal(err)
	}
}

// get GETs path and decodes a 200's JSON into out; it returns the status
// and the body.
func (e *queryEnv) get(path string, hdr http.Header, out any) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func ids(recs []api.Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.ID)
	}
	return strings.Join(s, ",")
}

// restrictToMine makes the reader a restricted one (node 42, the hub's
// read rules): jobs whose owner is me, fields owner, prio and status
// only; it returns the header that marks a request as that reader's.
func (e *queryEnv) restrictToMine() http.Header {
	e.t.Helper()
	lim := replication.Scope{Tables: []replication.TableScope{{Table: "jobs", Projected: true,
		Fields: []string{"owner", "prio", "status"}, Filter: "owner == 'me'"}}}
	if err := lim.Validate(); err != nil {
		e.t.Fatal(err)
	}
	e.core.reader = fieldReader{&authz.Reader{Node: hlc.NodeID(42), Limit: lim}}
	return http.Header{"X-Test-Reader": {"1"}}
}

func seedJobs(e *queryEnv) {
	for i := 1; i <= 7; i++ {
		owner := "me"
		if i%2 == 0 {
			owner = "you"
		}
		e.put("jobs", fmt.Sprintf("j%d", i), map[string]any{"owner": owner, "prio": int64(i % 4), "status": "open", "secret": fmt.Sprintf("s%d", i)})
	}
}

func TestQueryRecords(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)

	// where + order + limit, then the cursor to the end.
	var p api.Page
	q := "/v1/tables/jobs/records?" + url.Values{"where": {"owner == 'me'"}, "order": {"-prio"}, "limit": {"2"}}.Encode()
	if code, body := e.get(q, nil, &p); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	// me: j1 (prio 1), j3 (3), j5 (1), j7 (3): -prio then id.
	if got := ids(p.Records); got != "j3,j7" || p.Next == "" {
		t.Fatalf("page 1: %s next %q", got, p.Next)
	}
	var p2 api.Page
	e.get(q+"&cursor="+url.QueryEscape(p.Next), nil, &p2)
	if got := ids(p2.Records); got != "j1,j5" || p2.Next != "" {
		t.Fatalf("page 2: %s next %q", got, p2.Next)
	}

	// A page's records are rendered as GET .../records/{id} renders them.
	var one api.Record
	e.get("/v1/tables/jobs/records/j3", nil, &one)
	a, _ := json.Marshal(one)
	b, _ := json.Marshal(p.Records[0])
	if string(a) != string(b) {
		t.Fatalf("query renders %s, GET renders %s", b, a)
	}

	// fields, count, explain.
	var pf api.Page
	e.get("/v1/tables/jobs/records?fields=prio&where=id=='j2'", nil, &pf)
	if len(pf.Records) != 1 || len(pf.Records[0].Fields) != 1 || string(pf.Records[0].Fields["prio"]) != "2" {
		t.Fatalf("fields=prio: %+v", pf.Records)
	}
	var pe api.Page
	e.get("/v1/tables/jobs/records?explain=true&limit=1", nil, &pe)
	if pe.Plan == nil || pe.Plan.Index != nil || pe.Plan.Examined == 0 {
		t.Fatalf("explain: %+v", pe.Plan)
	}
	// Without query parameters: the old paging (limit, after).
	var old struct {
		Records []api.Record `json:"records"`
		Next    string       `json:"next"`
	}
	e.get("/v1/tables/jobs/records?limit=3&after=j2", nil, &old)
	if got := ids(old.Records); got != "j3,j4,j5" || old.Next != "j5" {
		t.Fatalf("old paging: %s next %q", got, old.Next)
	}
}

func TestQueryCountExact(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e) // prio: j1 1, j2 2, j3 3, j4 0, j5 1, j6 2, j7 3
	var c api.Count
	e.get("/v1/tables/jobs/records?count=true&where=prio>=2", nil, &c)
	if c.Count != 4 {
		t.Fatalf("count: %d, want 4", c.Count)
	}
	// device.* reads this replica's attributes.
	e.get("/v1/tables/jobs/records?count=true&where="+url.QueryEscape("owner == device.user"), nil, &c)
	if c.Count != 4 {
		t.Fatalf("owner == device.user: %d, want 4", c.Count)
	}
}

func TestQueryBadParams(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	for _, tc := range []struct{ q, want string }{
		{"where=" + url.QueryEscape("prio >= "), "where: at offset"},
		{"where=" + url.QueryEscape("prio + 1"), "where: at offset"},
		{"order=prio,prio", "order: at offset 5"},
		{"order=prio,now", "order: at offset 5"},
		{"cursor=bogus", "cursor"},
		{"limit=-1", "limit"},
		{"where=true&limit=1000000", "limit: at offset 0"},
		{"where=true&after=j1", "after: at offset 0: unknown option"},
		{"where=true&colour=red", "colour: at offset 0: unknown option"},
		{"count=maybe", "count"},
		{"fields=,a", "fields: at offset 0"},
		{"where=true&timeout=5s", "timeout: at offset 0: it applies to a live query"},
		{"where=true&last_event_id=x", "last_event_id: at offset 0"},
	} {
		code, body := e.get("/v1/tables/jobs/records?"+tc.q, nil, nil)
		if code != 400 || !strings.Contains(body, tc.want) || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.q, code, body, tc.want)
		}
	}
	// A cursor from another query.
	var p api.Page
	e.get("/v1/tables/jobs/records?order=prio&limit=1", nil, &p)
	code, body := e.get("/v1/tables/jobs/records?order=-prio&limit=1&cursor="+url.QueryEscape(p.Next), nil, nil)
	if code != 400 || !strings.Contains(body, "cursor") {
		t.Errorf("cursor of another query: %d %s", code, body)
	}
}

func TestQueryDrafts(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{Role: replica.RoleHub, Indexes: []replica.Index{{Name: "by_owner", Table: "jobs", Fields: []string{"owner"}}}})
	seedJobs(e)
	waitBuilt(t, e.r, "by_owner")
	st := e.n.Store()
	v := func(x any) crdt.Value {
		b, err := crdt.ValueOf(x)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// j2 is you's; its draft makes it mine. j9 exists only as a draft.
	if _, err := st.PutDraft("jobs", "j2", []crdt.FieldValue{{Name: "owner", Value: v("me")}}, time.Now().UnixMilli(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutDraft("jobs", "j9", []crdt.FieldValue{{Name: "owner", Value: v("me")}, {Name: "prio", Value: v(int64(0))}}, time.Now().UnixMilli(), nil); err != nil {
		t.Fatal(err)
	}
	var p api.Page
	e.get("/v1/tables/jobs/records?explain=true&where="+url.QueryEscape("owner == 'me'"), nil, &p)
	if got := ids(p.Records); got != "j1,j3,j5,j7" || p.Plan == nil || p.Plan.Index == nil || *p.Plan.Index != "by_owner" {
		t.Fatalf("without draft: %s plan %+v", got, p.Plan)
	}
	var pd api.Page
	e.get("/v1/tables/jobs/records?draft=true&explain=true&where="+url.QueryEscape("owner == 'me'"), nil, &pd)
	if got := ids(pd.Records); got != "j1,j2,j3,j5,j7,j9" {
		t.Fatalf("draft=true: %s", got)
	}
	if pd.Plan == nil || pd.Plan.Index != nil {
		t.Fatalf("draft=true plans a scan, got %+v", pd.Plan)
	}
	if string(pd.Records[1].Fields["owner"]) != `"me"` || string(pd.Records[1].Fields["secret"]) != `"s2"` {
		t.Fatalf("j2 with its draft: %s", pd.Records[1].Fields)
	}
	var c api.Count
	e.get("/v1/tables/jobs/records?draft=true&count=true&where="+url.QueryEscape("owner == 'you'"), nil, &c)
	if c.Count != 2 { // j4, j6
		t.Fatalf("draft count: %d", c.Count)
	}
	// order over drafted values.
	var po api.Page
	e.get("/v1/tables/jobs/records?draft=true&order=prio,-id&limit=3", nil, &po)
	if got := ids(po.Records); got != "j9,j4,j5" {
		t.Fatalf("draft order: %s", got)
	}
}

func waitBuilt(t *testing.T, r *replica.Replica, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ix := range r.Indexes() {
			if ix.Name == name && ix.Built {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("index %s not built", name)
}

func TestQueryReadPermissions(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	rd := e.restrictToMine()
	for _, q := range []string{
		"where=" + url.QueryEscape("secret == 's2'"),
		"where=" + url.QueryEscape("record['secret'] == 's2'"),
		"order=-secret",
		"fields=prio,secret",
	} {
		code, body := e.get("/v1/tables/jobs/records?"+q, rd, nil)
		if code != 403 || !strings.Contains(body, "secret") && !strings.Contains(body, "record[") {
			t.Errorf("%s: %d %s, want 403 naming the field", q, code, body)
		}
	}
	// Hidden records are not in pages or counts; hidden fields in no record.
	var p api.Page
	e.get("/v1/tables/jobs/records?order=-prio&limit=3", rd, &p)
	if got := ids(p.Records); got != "j3,j7,j1" || p.Next == "" {
		t.Fatalf("restricted page: %s next %q", got, p.Next)
	}
	for _, r := range p.Records {
		if _, ok := r.Fields["secret"]; ok {
			t.Fatalf("hidden field shown: %s", r.Fields)
		}
	}
	var c api.Count
	e.get("/v1/tables/jobs/records?count=true&where=prio>=0", rd, &c)
	if c.Count != 4 {
		t.Fatalf("restricted count: %d, want 4", c.Count)
	}
	// Unrestricted: everything.
	e.get("/v1/tables/jobs/records?count=true&where=prio>=0", nil, &c)
	if c.Count != 7 {
		t.Fatalf("count: %d, want 7", c.Count)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      api.WatchEvent
}

// sseReader reads the events of a stream.
type sseReader struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
	// onComment (nil: nothing) is called for each comment line (the
	// heartbeats).
	onComment func()
}

func (e *queryEnv) stream(path string, hdr http.Header) *sseReader {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, b)
	}
	return &sseReader{t: e.t, resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event (ok false at the stream's end).
func (s *sseReader) next() (sseEvent, bool) {
	var ev sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
			if s.onComment != nil {
				s.onComment()
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
				s.t.Fatalf("data %q: %v", line, err)
			}
		}
	}
	return ev, false
}

func (s *sseReader) must(typ string) sseEvent {
	s.t.Helper()
	ev, ok := s.next()
	if !ok {
		s.t.Fatalf("stream ended, want %s", typ)
	}
	if ev.event != typ || ev.data.Type != typ || ev.id != ev.data.ID {
		s.t.Fatalf("event %+v, want %s", ev, typ)
	}
	return ev
}

func TestWatchSSE(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	path := "/v1/tables/jobs/records?watch=true&where=" + url.QueryEscape("owner == 'me'") + "&order=prio"
	s := e.stream(path, nil)
	res := s.must("result")
	if got := ids(res.data.Records); got != "j1,j5,j3,j7" || res.id == "" {
		t.Fatalf("result: %s id %q", got, res.id)
	}
	// Records are rendered as GET renders them.
	var one api.Record
	e.get("/v1/tables/jobs/records/j1", nil, &one)
	a, _ := json.Marshal(one)
	b, _ := json.Marshal(res.data.Records[0])
	if string(a) != string(b) {
		t.Fatalf("watch renders %s, GET renders %s", b, a)
	}
	e.put("jobs", "j2", map[string]any{"owner": "me"})
	add := s.must("add")
	if add.data.RecordID != "j2" || add.data.Record == nil || string(add.data.Record.Fields["owner"]) != `"me"` {
		t.Fatalf("add: %+v", add.data)
	}
	e.put("jobs", "j1", map[string]any{"status": "done"})
	ch := s.must("change")
	if ch.data.RecordID != "j1" || string(ch.data.Record.Fields["status"]) != `"done"` {
		t.Fatalf("change: %+v", ch.data)
	}
	if err := e.r.Delete(context.Background(), "jobs", "j3"); err != nil {
		t.Fatal(err)
	}
	rm := s.must("remove")
	if rm.data.RecordID != "j3" || rm.data.Record != nil {
		t.Fatalf("remove: %+v", rm.data)
	}
	s.resp.Body.Close()

	// Resume after the add: the change and the remove again.
	e.put("jobs", "j4", map[string]any{"owner": "me"})
	s2 := e.stream(path, http.Header{"Last-Event-ID": {add.id}})
	got := map[string]string{}
	for len(got) < 3 {
		ev, ok := s2.next()
		if !ok {
			t.Fatalf("resumed stream ended after %v", got)
		}
		if ev.event == "reset" {
			t.Fatalf("resumed with a reset")
		}
		got[ev.data.RecordID] = ev.event
	}
	if got["j1"] != "change" || got["j3"] != "remove" || got["j4"] != "change" {
		t.Fatalf("resumed: %v", got)
	}
}

func TestWatchHeartbeatAndClose(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	e.qs.heartbeat = 20 * time.Millisecond
	seedJobs(e)
	s := e.stream("/v1/tables/jobs/records?watch=true", nil)
	beats := make(chan struct{}, 100)
	s.onComment = func() { beats <- struct{}{} }
	s.must("result")
	done := make(chan bool)
	go func() {
		_, ok := s.next()
		done <- ok
	}()
	for i := 0; i < 3; i++ { // heartbeats come while nothing changes
		select {
		case <-beats:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d heartbeats", i)
		}
	}
	start := time.Now()
	e.qs.Close() // as the server's shutdown does: the stream ends
	select {
	case ok := <-done:
		if ok {
			t.Fatal("an event came; want the stream's end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the stream")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the stream ended %s after Close", d)
	}
	// And new watches are refused.
	if code, _ := e.get("/v1/tables/jobs/records?watch=true", nil, nil); code != 503 {
		t.Fatalf("watch after Close: %d", code)
	}
}

func TestWatchLongPoll(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	base := "/v1/tables/jobs/records?watch=true&where=" + url.QueryEscape("owner == 'you'")
	var first api.WatchPage
	start := time.Now()
	if code, body := e.get(base, nil, &first); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if len(first.Events) != 1 || first.Events[0].Type != "result" || ids(first.Events[0].Records) != "j2,j4,j6" || first.LastEventID == "" {
		t.Fatalf("first poll: %+v", first)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the first poll waited")
	}
	// Nothing new: the poll waits out its timeout, answering no events.
	var idle api.WatchPage
	e.get(base+"&timeout=100ms&last_event_id="+url.QueryEscape(first.LastEventID), nil, &idle)
	if len(idle.Events) != 0 || idle.LastEventID != first.LastEventID {
		t.Fatalf("idle poll: %+v", idle)
	}
	// A change while the poll waits.
	got := make(chan api.WatchPage)
	go func() {
		var p api.WatchPage
		e.get(base+"&timeout=30s&last_event_id="+url.QueryEscape(first.LastEventID), nil, &p)
		got <- p
	}()
	time.Sleep(50 * time.Millisecond) // the poll is (usually) waiting; either way it sees the change
	e.put("jobs", "j1", map[string]any{"owner": "you"})
	var p api.WatchPage
	select {
	case p = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not answer the change")
	}
	if len(p.Events) == 0 || p.Events[len(p.Events)-1].RecordID != "j1" || p.LastEventID == "" {
		t.Fatalf("poll after a change: %+v", p)
	}
	// Bad parameters.
	for _, q := range []string{"&timeout=soon", "&count=true", "&online=true", "&draft=true"} {
		if code, body := e.get(base+q, nil, nil); code != 400 {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}

func TestWatchBound(t *testing.T) {
	e := newQueryEnv(t, 2, replica.Config{})
	seedJobs(e)
	a := e.stream("/v1/tables/jobs/records?watch=true", nil)
	a.must("result")
	b := e.stream("/v1/tables/jobs/records?watch=true&where=prio>1", nil)
	b.must("result")
	code, body := e.get("/v1/tables/jobs/records?watch=true&timeout=1s", nil, nil)
	if code != 503 || !strings.Contains(body, "at most 2") {
		t.Fatalf("beyond the bound: %d %s", code, body)
	}
	// A query (not live) is not bounded.
	if code, _ := e.get("/v1/tables/jobs/records?where=true", nil, nil); code != 200 {
		t.Fatalf("query: %d", code)
	}
	a.resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var p api.WatchPage
		if code, _ := e.get("/v1/tables/jobs/records?watch=true", nil, &p); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed stream was not freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingWriter is a ResponseWriter whose writes wait for release: a
// client that does not read.
type blockingWriter struct {
	mu      sync.Mutex
	hdr     http.Header
	body    strings.Builder
	release chan struct{}
	wrote   chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Header() http.Header { return b.hdr }
func (b *blockingWriter) WriteHeader(int)     {}
func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.wrote) })
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.body.Write(p)
}
func (b *blockingWriter) Flush() {}

func TestWatchOverflow(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{WatchQueue: 4})
	seedJobs(e)
	w := &blockingWriter{hdr: http.Header{}, release: make(chan struct{}), wrote: make(chan struct{})}
	r := httptest.NewRequest(http.MethodGet, "/v1/tables/jobs/records?watch=true", nil)
	r.Header.Set("Accept", "text/event-stream")
	r.SetPathValue("table", "jobs")
	done := make(chan error, 1)
	go func() {
		_, err := e.qs.Records(w, r)
		done <- err
	}()
	<-w.wrote // the stream's first write waits: the client does not read
	for i := 0; i < 50; i++ {
		e.put("jobs", fmt.Sprintf("n%02d", i), map[string]any{"owner": "x"})
	}
	close(w.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after an overflow")
	}
	body := w.body.String()
	if !strings.Contains(body, "event: overflow") || !strings.HasSuffix(strings.TrimSpace(body), "}") {
		t.Fatalf("stream without a final overflow event:\n%s", body)
	}
	last := body[strings.LastIndex(body, "event: "):]
	if !strings.HasPrefix(last, "event: overflow") {
		t.Fatalf("last event is not the overflow: %s", last)
	}
}

func TestWatchReadPermissions(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	rd := e.restrictToMine()
	if code, body := e.get("/v1/tables/jobs/records?watch=true&where="+url.QueryEscape("secret != ''"), rd, nil); code != 403 || !strings.Contains(body, "secret") {
		t.Fatalf("watch naming a hidden field: %d %s", code, body)
	}
	s := e.stream("/v1/tables/jobs/records?watch=true&where=prio>=0", rd)
	res := s.must("result")
	if got := ids(res.data.Records); got != "j1,j3,j5,j7" {
		t.Fatalf("result: %s", got)
	}
	for _, r := range res.data.Records {
		if _, ok := r.Fields["secret"]; ok {
			t.Fatalf("hidden field shown: %s", r.Fields)
		}
	}
	e.put("jobs", "j4", map[string]any{"secret": "changed"}) // a record it may not read: nothing
	e.put("jobs", "j2", map[string]any{"owner": "me"})       // now it may: an add
	e.put("jobs", "j1", map[string]any{"owner": "you"})      // no longer: a remove
	got := map[string]string{}
	lastID := res.id
	for len(got) < 2 { // one round or two: in either order
		ev, ok := s.next()
		if !ok {
			t.Fatalf("stream ended after %v", got)
		}
		if ev.id != "" {
			lastID = ev.id
		}
		if ev.data.Record != nil && ev.data.Record.Fields["secret"] != nil {
			t.Fatalf("hidden field shown: %+v", ev.data)
		}
		got[ev.data.RecordID] = ev.event
	}
	if got["j2"] != "add" || got["j1"] != "remove" || len(got) != 2 {
		t.Fatalf("events: %v, want j2 added and j1 removed only", got)
	}
	s.resp.Body.Close()
	// Resuming from an id whose held set the node does not know (the
	// token left out), it starts again: a reset of what it may read.
	engineID, _, _ := strings.Cut(lastID, "~")
	s2 := e.stream("/v1/tables/jobs/records?watch=true&where=prio>=0", http.Header{"X-Test-Reader": {"1"}, "Last-Event-ID": {engineID}})
	reset := s2.must("reset")
	if got := ids(reset.data.Records); got != "j2,j3,j5,j7" {
		t.Fatalf("reset: %s", got)
	}
}

// TestWatchReadPermissionsResume: a restricted reader resuming from the
// last id it was given gets what changed meanwhile as it would have
// live (narrowed; a record it no longer may read as a remove, one it now
// may as an add), not a reset, and nothing of a record it never could
// read; a reader with another read limit resuming from that id gets a
// reset.
func TestWatchReadPermissionsResume(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	e.restrictToMine()
	path := "/v1/tables/jobs/records?watch=true&where=prio>=0"
	s := e.stream(path, http.Header{"X-Test-Reader": {"1"}})
	res := s.must("result")
	if got := ids(res.data.Records); got != "j1,j3,j5,j7" {
		t.Fatalf("result: %s", got)
	}
	e.put("jobs", "j1", map[string]any{"prio": int64(2)})
	e.put("jobs", "j4", map[string]any{"secret": "x"}) // last in its round, perhaps: the id moves to j1's event
	ev := s.must("change")
	if ev.data.RecordID != "j1" || ev.id == "" {
		t.Fatalf("live change: %+v", ev)
	}
	lastID := ev.id
	s.resp.Body.Close()

	// While it is away: a record it reads changes, one it never could
	// read changes, one it held it may no longer read, one it now may.
	e.put("jobs", "j3", map[string]any{"prio": int64(0), "secret": "changed"})
	e.put("jobs", "j4", map[string]any{"prio": int64(2), "secret": "changed"})
	e.put("jobs", "j5", map[string]any{"owner": "you"})
	e.put("jobs", "j6", map[string]any{"owner": "me"})
	s2 := e.stream(path, http.Header{"X-Test-Reader": {"1"}, "Last-Event-ID": {lastID}})
	got := map[string]string{}
	var last sseEvent
	for len(got) < 3 {
		ev, ok := s2.next()
		if !ok {
			t.Fatalf("stream ended after %v", got)
		}
		if ev.event == "reset" || ev.event == "result" {
			t.Fatalf("resumption sent a %s: %+v", ev.event, ev.data)
		}
		if ev.data.RecordID == "j4" {
			t.Fatalf("an event of a record it never could read: %+v", ev.data)
		}
		if ev.data.Record != nil && ev.data.Record.Fields["secret"] != nil {
			t.Fatalf("hidden field shown: %+v", ev.data.Record.Fields)
		}
		got[ev.data.RecordID], last = ev.event, ev
	}
	if got["j3"] != "change" || got["j5"] != "remove" || got["j6"] != "add" || last.id == "" {
		t.Fatalf("events %v (last id %q), want j3 changed, j5 removed, j6 added", got, last.id)
	}
	// It goes on live from the set it holds.
	e.put("jobs", "j6", map[string]any{"owner": "you"})
	if ev := s2.must("remove"); ev.data.RecordID != "j6" {
		t.Fatalf("live after the resumption: %+v", ev.data)
	}
	s2.resp.Body.Close()

	// Another read limit: the held set is not its.
	e.core.reader = fieldReader{&authz.Reader{Node: hlc.NodeID(42), Limit: replication.Scope{Tables: []replication.TableScope{{Table: "jobs"}}}}}
	s3 := e.stream(path, http.Header{"X-Test-Reader": {"1"}, "Last-Event-ID": {last.id}})
	if reset := s3.must("reset"); ids(reset.data.Records) != "j1,j2,j3,j4,j5,j6,j7" {
		t.Fatalf("reset for another limit: %s", ids(reset.data.Records))
	}
}

func TestWatchLongPollReadPermissions(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	rd := e.restrictToMine()
	base := "/v1/tables/jobs/records?watch=true&where=prio>=0"
	var first api.WatchPage
	e.get(base, rd, &first)
	if len(first.Events) != 1 || first.Events[0].Type != "result" || ids(first.Events[0].Records) != "j1,j3,j5,j7" {
		t.Fatalf("first poll: %+v", first)
	}
	// Nothing changed: no events (not a reset at once, each time).
	var idle api.WatchPage
	e.get(base+"&timeout=100ms&last_event_id="+url.QueryEscape(first.LastEventID), rd, &idle)
	if len(idle.Events) != 0 || idle.LastEventID != first.LastEventID {
		t.Fatalf("idle poll: %+v", idle)
	}
	// A change: the poll answers it, narrowed (j2 may now be read: an
	// add), not the whole result again.
	e.put("jobs", "j2", map[string]any{"owner": "me"})
	var p api.WatchPage
	e.get(base+"&timeout=10s&last_event_id="+url.QueryEscape(first.LastEventID), rd, &p)
	if len(p.Events) != 1 || p.Events[0].Type != "add" || p.Events[0].RecordID != "j2" || p.LastEventID == "" || p.LastEventID == first.LastEventID {
		t.Fatalf("poll after a change: %+v", p)
	}
	if f := p.Events[0].Record.Fields; f["secret"] != nil || f["owner"] == nil {
		t.Fatalf("fields shown: %s", f)
	}
	// A change to a record it may not read: nothing of it; then one it
	// held no longer readable: a remove.
	e.put("jobs", "j4", map[string]any{"secret": "changed"})
	var p2 api.WatchPage
	e.get(base+"&timeout=300ms&last_event_id="+url.QueryEscape(p.LastEventID), rd, &p2)
	if len(p2.Events) != 0 {
		t.Fatalf("poll after a change it may not read: %+v", p2)
	}
	e.put("jobs", "j3", map[string]any{"owner": "you"})
	var p3 api.WatchPage
	e.get(base+"&timeout=10s&last_event_id="+url.QueryEscape(p2.LastEventID), rd, &p3)
	if len(p3.Events) != 1 || p3.Events[0].Type != "remove" || p3.Events[0].RecordID != "j3" {
		t.Fatalf("poll after a record left what it may read: %+v", p3)
	}
	// A retried poll (its answer lost) gets the same answer again.
	var p4 api.WatchPage
	e.get(base+"&timeout=10s&last_event_id="+url.QueryEscape(p2.LastEventID), rd, &p4)
	if len(p4.Events) != 1 || p4.Events[0].Type != "remove" || p4.Events[0].RecordID != "j3" {
		t.Fatalf("retried poll: %+v", p4)
	}
}

func TestViews(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{Role: replica.RoleHub, Views: []replica.View{
		{Name: "mine", Table: "jobs", Where: "owner == device.user", Order: []string{"-prio"}},
		{Name: "all", Table: "jobs"},
	}})
	seedJobs(e)
	var list api.ViewList
	if code, body := e.get("/v1/views", nil, &list); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	b, _ := json.Marshal(list)
	want := `{"views":[{"name":"all","table":"jobs","where":"","order":[],"count":7},{"name":"mine","table":"jobs","where":"owner == device.user","order":["-prio"],"count":4}]}`
	if string(b) != want {
		t.Fatalf("views:\n%s\nwant\n%s", b, want)
	}
	// A view answers as a query of its table, where and order.
	var p api.Page
	e.get("/v1/views/mine?limit=3&fields=prio", nil, &p)
	if got := ids(p.Records); got != "j3,j7,j1" || p.Next == "" || len(p.Records[0].Fields) != 1 {
		t.Fatalf("view page: %s next %q %s", got, p.Next, p.Records[0].Fields)
	}
	var p2 api.Page
	e.get("/v1/views/mine?limit=3&fields=prio&cursor="+url.QueryEscape(p.Next), nil, &p2)
	if got := ids(p2.Records); got != "j5" || p2.Next != "" {
		t.Fatalf("view page 2: %s next %q", got, p2.Next)
	}
	var c api.Count
	e.get("/v1/views/mine?count=true", nil, &c)
	if c.Count != 4 {
		t.Fatalf("view count: %d", c.Count)
	}
	var pe api.Page
	e.get("/v1/views/all?explain=true&limit=1", nil, &pe)
	if pe.Plan == nil || pe.Plan.Examined == 0 {
		t.Fatalf("explain: %+v", pe.Plan)
	}
	for q, want := range map[string]int{
		"/v1/views/nope":                 404,
		"/v1/views/mine?where=true":      400,
		"/v1/views/mine?order=prio":      400,
		"/v1/views/mine?limit=-1":        400,
		"/v1/views/mine?colour=red":      400,
		"/v1/views?limit=1":              400,
		"/v1/views/mine?cursor=whatever": 400,
	} {
		if code, body := e.get(q, nil, nil); code != want {
			t.Errorf("%s: %d %s, want %d", q, code, body, want)
		}
	}
	// Live: watch=true on a view.
	s := e.stream("/v1/views/mine?watch=true", nil)
	if res := s.must("result"); ids(res.data.Records) != "j3,j7,j1,j5" {
		t.Fatalf("view result: %s", ids(res.data.Records))
	}
	e.put("jobs", "j2", map[string]any{"owner": "me"})
	if add := s.must("add"); add.data.RecordID != "j2" {
		t.Fatalf("view add: %+v", add.data)
	}
	var wp api.WatchPage
	if code, body := e.get("/v1/views/mine?watch=true", nil, &wp); code != 200 || len(wp.Events) != 1 || len(wp.Events[0].Records) != 5 {
		t.Fatalf("view long poll: %d %s", code, body)
	}
}

// A full window resumes with a reset however little changed: a long poll
// waits for a change instead of answering the result the client holds.
func TestWatchLongPollFullWindow(t *testing.T) {
	e := newQueryEnv(t, 0, replica.Config{})
	seedJobs(e)
	base := "/v1/tables/jobs/records?watch=true&limit=2&order=-prio"
	var first api.WatchPage
	e.get(base, nil, &first)
	if len(first.Events) != 1 || ids(first.Events[0].Records) != "j3,j7" {
		t.Fatalf("first poll: %+v", first)
	}
	start := time.Now()
	var idle api.WatchPage
	e.get(base+"&timeout=300ms&last_event_id="+url.QueryEscape(first.LastEventID), nil, &idle)
	if len(idle.Events) != 0 || idle.LastEventID != first.LastEventID || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("idle poll of a full window: %+v after %s", idle, time.Since(start))
	}
	got := make(chan api.WatchPage, 1)
	go func() {
		var p api.WatchPage
		e.get(base+"&timeout=30s&last_event_id="+url.QueryEscape(first.LastEventID), nil, &p)
		got <- p
	}()
	e.put("jobs", "j1", map[string]any{"prio": int64(9)})
	select {
	case p := <-got:
		if len(p.Events) == 0 || ids(p.Events[0].Records) != "j1,j3" && p.Events[len(p.Events)-1].RecordID != "j1" {
			t.Fatalf("poll after a change: %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not answer the change")
	}
	// A restricted reader's too.
	e.core.reader = fieldReader{&authz.Reader{Node: hlc.NodeID(42), Limit: replication.Scope{Tables: []replication.TableScope{{Table: "jobs"}}}}}
	rd := http.Header{"X-Test-Reader": {"1"}}
	var rfirst, ridle api.WatchPage
	e.get(base, rd, &rfirst)
	e.get(base+"&timeout=300ms&last_event_id="+url.QueryEscape(rfirst.LastEventID), rd, &ridle)
	if len(ridle.Events) != 0 {
		t.Fatalf("restricted idle poll of a full window: %+v", ridle)
	}
}
