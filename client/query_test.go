package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
)

// agentStub is an httptest server answering the query routes as the
// agent's contract says; it records every request.
type agentStub struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newAgentStub(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*agentStub, *Client) {
	s := &agentStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		n := len(s.reqs)
		s.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(s.srv.Close)
	return s, New(s.srv.URL)
}

func (s *agentStub) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func rec(id string, fields string) Record {
	var f map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fields), &f); err != nil {
		panic(err)
	}
	return Record{Table: "jobs", ID: id, Fields: f}
}

// TestQueryRequests: Query, Count, Views and View send the contract's
// paths and parameters (and nothing for options left at zero) and
// decode its answers.
func TestQueryRequests(t *testing.T) {
	idx := "by_owner"
	stub, c := newAgentStub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == "/v1/views":
			writeJSON(w, 200, api.ViewList{Views: []api.View{{Name: "mine", Table: "jobs", Where: "owner == device.user", Order: []string{"-prio"}, Count: 2}}})
		case r.URL.Query().Get("count") == "true":
			writeJSON(w, 200, api.Count{Count: 7})
		default:
			writeJSON(w, 200, api.Page{Records: []Record{rec("j1", `{"prio":3}`)}, Next: "CUR2", Plan: &api.Plan{Index: &idx, Examined: 1}})
		}
	})
	ctx := context.Background()
	p, err := c.Query(ctx, Query{Table: "jobs", Where: "prio >= 2 && owner == 'a b'", Order: []string{"-prio", "id"}, Limit: 5,
		Cursor: "CUR1", Fields: []string{"prio", "owner"}, Explain: true, Draft: true, Online: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Next != "CUR2" || len(p.Records) != 1 || p.Plan == nil || *p.Plan.Index != "by_owner" || p.Plan.Examined != 1 {
		t.Errorf("page: %+v", p)
	}
	n, err := c.Count(ctx, Query{Table: "jobs", Where: "prio > 1"})
	if err != nil || n != 7 {
		t.Errorf("count: %d, %v", n, err)
	}
	vs, err := c.Views(ctx)
	if err != nil || len(vs) != 1 || vs[0].Name != "mine" || vs[0].Count != 2 || !reflect.DeepEqual(vs[0].Order, []string{"-prio"}) {
		t.Errorf("views: %+v, %v", vs, err)
	}
	if _, err := c.View(ctx, "my view", Query{Limit: 2, Cursor: "C"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, Query{Table: "jobs", Limit: -1}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path  string
		query url.Values
	}{
		{"/v1/tables/jobs/records", url.Values{"where": {"prio >= 2 && owner == 'a b'"}, "order": {"-prio,id"}, "limit": {"5"}, "cursor": {"CUR1"},
			"fields": {"prio,owner"}, "explain": {"true"}, "draft": {"true"}, "online": {"true"}}},
		{"/v1/tables/jobs/records", url.Values{"where": {"prio > 1"}, "count": {"true"}}},
		{"/v1/views", url.Values{}},
		{"/v1/views/my view", url.Values{"limit": {"2"}, "cursor": {"C"}}},
		{"/v1/tables/jobs/records", url.Values{"where": {""}, "limit": {"-1"}}}, // the agent refuses it, not the client
	}
	got := stub.requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Method != http.MethodGet || got[i].URL.Path != w.path || !reflect.DeepEqual(got[i].URL.Query(), w.query) {
			t.Errorf("request %d: %s %s %v; want GET %s %v", i, got[i].Method, got[i].URL.Path, got[i].URL.Query(), w.path, w.query)
		}
	}
}

// TestQueryRefused: a 400 is an *APIError carrying the agent's message.
func TestQueryRefused(t *testing.T) {
	_, c := newAgentStub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 400, api.Error{Error: "where: at offset 6: Syntax error: mismatched input"})
	})
	_, err := c.Query(context.Background(), Query{Table: "jobs", Where: "prio >"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "where: at offset 6: Syntax error: mismatched input" {
		t.Fatalf("err %v (%T)", err, err)
	}
}

// sse writes one server-sent event as the agent does.
func sse(w http.ResponseWriter, ev api.WatchEvent) {
	if ev.ID != "" {
		fmt.Fprintf(w, "id: %s\n", ev.ID)
	}
	b, _ := json.Marshal(ev)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b)
	w.(http.Flusher).Flush()
}

// TestWatchResumes: Watch reads the stream, reopens it after it drops
// and after an overflow with Last-Event-ID set to the last event id
// received (not an id-less event's), and LiveResult applies the reset
// that replaces the result.
func TestWatchResumes(t *testing.T) {
	j := func(id, f string) *Record { r := rec(id, f); return &r }
	stub, c := newAgentStub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Accept") != "text/event-stream" || r.URL.Query().Get("watch") != "true" {
			writeJSON(w, 400, api.Error{Error: "not a watch"})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		switch n {
		case 1: // the result, an add, then the connection drops
			sse(w, api.WatchEvent{Type: "result", ID: "e1", Records: []Record{rec("j1", `{"prio":1}`), rec("j2", `{"prio":2}`)}})
			sse(w, api.WatchEvent{Type: "add", ID: "e2", RecordID: "j3", Record: j("j3", `{"prio":3}`)})
		case 2: // a round: an id-less event, its last one, then an overflow
			fmt.Fprint(w, ": keep-alive\n\n")
			sse(w, api.WatchEvent{Type: "change", RecordID: "j1", Record: j("j1", `{"prio":9}`)})
			sse(w, api.WatchEvent{Type: "remove", ID: "e4", RecordID: "j2"})
			sse(w, api.WatchEvent{Type: "overflow", Error: "fell behind"})
		case 3: // cannot resume: a reset
			sse(w, api.WatchEvent{Type: "reset", ID: "e9", Records: []Record{rec("j7", `{"prio":"x"}`), rec("j5", `{}`), rec("j6", `{"prio":true}`)}})
		default: // stays open until the client goes
			<-r.Context().Done()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := NewLiveResult([]string{"-prio"})
	var types []string
	var afterChange []Record
	err := c.Watch(ctx, Query{View: "open"}, "", func(ev WatchEvent) error {
		live.Apply(ev)
		types = append(types, ev.Type)
		if ev.Type == "remove" {
			afterChange = live.Records()
		}
		if ev.Type == "reset" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch: %v", err)
	}
	if want := []string{"result", "add", "change", "remove", "overflow", "reset"}; !reflect.DeepEqual(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	ids := func(rs []Record) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID+"="+string(r.Fields["prio"]))
		}
		return out
	}
	if got := ids(afterChange); !reflect.DeepEqual(got, []string{"j1=9", "j3=3"}) {
		t.Errorf("after the change and remove: %v", got)
	}
	// -prio: strings before bools before absent.
	if got := ids(live.Records()); !reflect.DeepEqual(got, []string{`j7="x"`, "j6=true", "j5="}) {
		t.Errorf("after the reset: %v", got)
	}
	reqs := stub.requests()
	if len(reqs) < 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, want := range []string{"", "e2", "e4"} {
		if got := reqs[i].Header.Get("Last-Event-ID"); got != want {
			t.Errorf("request %d: Last-Event-ID %q, want %q", i+1, got, want)
		}
		if reqs[i].URL.Path != "/v1/views/open" {
			t.Errorf("request %d: path %s", i+1, reqs[i].URL.Path)
		}
	}
}

// TestWatchRefused: a 4xx ends Watch at once with the agent's error (no
// retry), so does an "error" event (the agent cannot go on), an agent
// not there before the first event, and an error of fn (that error).
func TestWatchRefused(t *testing.T) {
	stub, c := newAgentStub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("where") == "broken" { // the agent's error event, then the end
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: error\ndata: \"store closed\"\n\n")
			return
		}
		if r.URL.Query().Get("where") == "ok" {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, api.WatchEvent{Type: "result", ID: "e1"})
			<-r.Context().Done()
			return
		}
		writeJSON(w, 400, api.Error{Error: "order: at offset 0: unknown field"})
	})
	ctx := context.Background()
	err := c.Watch(ctx, Query{Table: "jobs", Where: "bad"}, "", func(WatchEvent) error { return nil })
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "offset 0") || len(stub.requests()) != 1 {
		t.Fatalf("Watch: %v after %d requests", err, len(stub.requests()))
	}
	if err := c.Watch(ctx, Query{Table: "jobs", Where: "broken"}, "", func(WatchEvent) error { return nil }); err == nil || !strings.Contains(err.Error(), "the agent ended the watch: store closed") {
		t.Fatalf("Watch ended by an error event: %v", err)
	}
	stop := errors.New("enough")
	if err := c.Watch(ctx, Query{Table: "jobs", Where: "ok"}, "", func(WatchEvent) error { return stop }); err != stop {
		t.Fatalf("Watch with fn failing: %v", err)
	}
	down := New(stub.srv.URL)
	stub.srv.Close()
	start := time.Now()
	if err := down.Watch(ctx, Query{Table: "jobs"}, "", func(WatchEvent) error { return nil }); err == nil || !strings.Contains(err.Error(), "cannot reach the agent") || time.Since(start) > 5*time.Second {
		t.Fatalf("Watch of an agent that is not there: %v after %v", err, time.Since(start))
	}
}

// TestWatchPoll: the long-poll sends watch, timeout and last_event_id.
func TestWatchPoll(t *testing.T) {
	stub, c := newAgentStub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, api.WatchPage{Events: []api.WatchEvent{{Type: "remove", ID: "e5", RecordID: "j1"}}, LastEventID: "e5"})
	})
	p, err := c.WatchPoll(context.Background(), Query{Table: "jobs", Where: "x == 1"}, "e4", 2*time.Second)
	if err != nil || p.LastEventID != "e5" || len(p.Events) != 1 {
		t.Fatalf("%+v, %v", p, err)
	}
	q := stub.requests()[0].URL.Query()
	if q.Get("watch") != "true" || q.Get("timeout") != "2s" || q.Get("last_event_id") != "e4" || q.Get("where") != "x == 1" {
		t.Errorf("query %v", q)
	}
}

// TestLiveResultOrder: records sort as the agent orders values (null or
// absent < bool < number < string < other, numbers by value), by
// several fields, with ties by id, ascending or descending.
func TestLiveResultOrder(t *testing.T) {
	l := NewLiveResult([]string{"a", "-b", "-id"})
	l.Apply(WatchEvent{Type: "result", Records: []Record{
		rec("r1", `{"a":"s","b":1}`), rec("r2", `{"a":10,"b":1}`), rec("r3", `{"a":9.5,"b":1}`),
		rec("r4", `{"a":null,"b":1}`), rec("r5", `{"b":1}`), rec("r6", `{"a":false}`),
		rec("r7", `{"a":[1],"b":1}`), rec("r8", `{"a":10,"b":2}`), rec("r9", `{"a":10.0,"b":2}`),
	}})
	var got []string
	for _, r := range l.Records() {
		got = append(got, r.ID)
	}
	want := []string{"r5", "r4", "r6", "r3", "r9", "r8", "r2", "r1", "r7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	l.Apply(WatchEvent{Type: "remove", RecordID: "r5"})
	l.Apply(WatchEvent{Type: "change", RecordID: "r1", Record: &Record{ID: "r1", Fields: map[string]json.RawMessage{"a": json.RawMessage(`-1`)}}})
	if rs := l.Records(); l.Len() != 8 || rs[0].ID != "r4" || rs[2].ID != "r1" {
		t.Errorf("after remove and change: %v", rs)
	}
}
