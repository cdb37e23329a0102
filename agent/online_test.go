package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/store"
)

// olNode is an agent run by these tests, stoppable and restartable on
// the same data directory.
type olNode struct {
	t      *testing.T
	cfg    Config
	a      *Agent
	cancel context.CancelFunc
	done   chan error
}

func olConfig(t *testing.T, role string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Role = role
	cfg.APIAddr, cfg.SyncAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "off"
	cfg.PullInterval = time.Hour
	return cfg
}

func olStart(t *testing.T, cfg Config) *olNode {
	t.Helper()
	n := &olNode{t: t, cfg: cfg}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *olNode) start() {
	n.t.Helper()
	a, err := New(n.cfg, hclog.NewNullLogger())
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.a, n.cancel, n.done = a, cancel, make(chan error, 1)
	go func() { n.done <- a.Run(ctx) }()
}

func (n *olNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("agent run: %v", err)
	}
	n.cancel = nil
}

func (n *olNode) syncAddr() string {
	n.a.cur.RLock()
	defer n.a.cur.RUnlock()
	return n.a.cur.Get().syncLn.Addr().String()
}

// call makes an API request and decodes the answer into out (if not
// nil); it returns the status.
func (n *olNode) call(method, path string, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+n.a.APIAddr()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, out); err != nil {
			n.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (n *olNode) put(table, id string, fields map[string]any) {
	n.t.Helper()
	if code := n.call("PUT", "/v1/tables/"+table+"/records/"+id, map[string]any{"fields": fields}, nil); code != 200 {
		n.t.Fatalf("put %s/%s: %d", table, id, code)
	}
}

func (n *olNode) sync() {
	n.t.Helper()
	var sum api.Summary
	if code := n.call("POST", "/v1/sync", nil, &sum); code != 200 || len(sum.Failed) > 0 {
		n.t.Fatalf("sync: %d %+v", code, sum)
	}
}

func (n *olNode) record(table, id string) (api.Record, bool) {
	n.t.Helper()
	var r api.Record
	return r, n.call("GET", "/v1/tables/"+table+"/records/"+id, nil, &r) == 200
}

// dupConflicts returns the duplicate entries of GET /v1/conflicts as
// "table/id:with1,with2", sorted, and checks every field entry says
// kind "field".
func (n *olNode) dupConflicts() []string {
	n.t.Helper()
	var out struct {
		Conflicts []api.Conflict `json:"conflicts"`
	}
	if code := n.call("GET", "/v1/conflicts", nil, &out); code != 200 {
		n.t.Fatalf("conflicts: %d", code)
	}
	var got []string
	for _, c := range out.Conflicts {
		switch c.Kind {
		case "duplicate":
			got = append(got, c.Table+"/"+c.ID+":"+strings.Join(c.With, ","))
		case "field":
		default:
			n.t.Fatalf("conflict of kind %q: %+v", c.Kind, c)
		}
	}
	sort.Strings(got)
	return got
}

func olEventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDuplicates: the hub flags a new record (from a device, or written
// on the hub) whose key values all match a live record's, never one that
// differs in one key or a non-key edit, and one flag per record when two
// arrive in one batch; the flags reach the device, which resolves them
// (merge, discard, keep) with ordinary writes that reach the hub.
func TestDuplicates(t *testing.T) {
	hcfg := olConfig(t, "hub")
	hcfg.Tables = map[string]TableConfig{"contacts": {Keys: []string{"email", "org"}}}
	hub := olStart(t, hcfg)
	dcfg := olConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev := olStart(t, dcfg)

	dev.put("contacts", "c1", map[string]any{"email": "a@x", "org": "acme", "name": "Ann"})
	dev.sync()
	dev.put("contacts", "c2", map[string]any{"email": "a@x", "org": "acme", "phone": "555"}) // duplicate of c1
	dev.put("contacts", "c3", map[string]any{"email": "a@x", "org": "other"})                // one key differs
	dev.put("contacts", "c5", map[string]any{"email": "e@x", "org": "o"})                    // same batch as c6
	dev.put("contacts", "c6", map[string]any{"email": "e@x", "org": "o"})
	dev.put("contacts", "c7", map[string]any{"email": "only"}) // lacks a key field
	dev.sync()
	want := []string{"contacts/c2:c1", "contacts/c6:c5"}
	olEventually(t, "the hub flags c2 and c6", func() bool { return reflect.DeepEqual(hub.dupConflicts(), want) })

	// A local write on the hub; a non-key edit of a flagged pair does not
	// flag again; a key change to matching values does.
	hub.put("contacts", "c4", map[string]any{"email": "a@x", "org": "other"})
	hub.put("contacts", "c1", map[string]any{"name": "Ann B."})
	dev.put("contacts", "c7", map[string]any{"org": "zz"})
	dev.sync()
	want = []string{"contacts/c2:c1", "contacts/c4:c3", "contacts/c6:c5"}
	olEventually(t, "the hub flags c4", func() bool { return reflect.DeepEqual(hub.dupConflicts(), want) })
	if resp, err := http.Get("http://" + hub.a.APIAddr() + "/metrics"); err == nil {
		prom, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(prom), "replicad_duplicates_open 3") {
			t.Errorf("metrics lack replicad_duplicates_open 3")
		}
	} else {
		t.Fatal(err)
	}
	var st map[string]any
	hub.call("GET", "/v1/status", nil, &st)
	if st["conflicts"].(float64) != 3 {
		t.Fatalf("status conflicts = %v, want 3", st["conflicts"])
	}

	// The flags reach the device.
	olEventually(t, "the device lists the flags", func() bool {
		dev.sync()
		return reflect.DeepEqual(dev.dupConflicts(), want)
	})

	// Bad resolutions are refused and change nothing.
	for _, bad := range []struct {
		path string
		body any
		code int
	}{
		{"/v1/duplicates/contacts/c2", map[string]any{"action": "fuse"}, 400},
		{"/v1/duplicates/contacts/c2", map[string]any{"action": "merge", "with": "c3"}, 400},
		{"/v1/duplicates/contacts/c1", map[string]any{"action": "keep"}, 404},
		{"/v1/duplicates/contacts/c2", map[string]any{"action": "merge", "prefer": "both"}, 400},
	} {
		if code := dev.call("POST", bad.path, bad.body, nil); code != bad.code {
			t.Fatalf("POST %s %v: %d, want %d", bad.path, bad.body, code, bad.code)
		}
	}

	// Merge c2 into c1 on the device: c1 gains the phone, keeps its name.
	var res map[string]any
	if code := dev.call("POST", "/v1/duplicates/contacts/c2", map[string]any{"action": "merge"}, &res); code != 200 {
		t.Fatalf("merge: %d", code)
	}
	// Discard c4 and keep c6 on the hub.
	if code := hub.call("POST", "/v1/duplicates/contacts/c4", map[string]any{"action": "discard", "with": "c3"}, nil); code != 200 {
		t.Fatalf("discard: %d", code)
	}
	if code := hub.call("POST", "/v1/duplicates/contacts/c6", map[string]any{"action": "keep"}, nil); code != 200 {
		t.Fatalf("keep: %d", code)
	}
	dev.sync()
	dev.sync()
	for _, n := range []*olNode{hub, dev} {
		if got := n.dupConflicts(); len(got) != 0 {
			t.Fatalf("open flags after resolving: %v", got)
		}
		c1, ok := n.record("contacts", "c1")
		if !ok || string(c1.Fields["phone"]) != `"555"` || string(c1.Fields["name"]) != `"Ann B."` {
			t.Fatalf("merged c1 = %+v", c1.Fields)
		}
		for _, gone := range []string{"c2", "c4"} {
			if _, ok := n.record("contacts", gone); ok {
				t.Fatalf("%s still exists after the resolution", gone)
			}
		}
		for _, kept := range []string{"c3", "c5", "c6"} {
			if _, ok := n.record("contacts", kept); !ok {
				t.Fatalf("%s is gone", kept)
			}
		}
		var all struct{ Duplicates []api.Duplicate }
		n.call("GET", "/v1/duplicates?all=true", nil, &all)
		status := map[string]string{}
		for _, f := range all.Duplicates {
			status[f.ID] = f.Status
		}
		if !reflect.DeepEqual(status, map[string]string{"c2": "merged", "c4": "discarded", "c6": "kept"}) {
			t.Fatalf("flag statuses = %v", status)
		}
	}
	// A record re-created with c1's keys after all this is flagged again.
	hub.put("contacts", "c8", map[string]any{"email": "a@x", "org": "acme"})
	olEventually(t, "c8 flagged", func() bool {
		return reflect.DeepEqual(hub.dupConflicts(), []string{"contacts/c8:c1"})
	})
}

// TestDuplicatesKeysDeclaredLater: declaring keys builds the index of
// the existing records at start without flagging them; a new record
// matching them is flagged with all of them; dropping the keys drops
// the index.
func TestDuplicatesKeysDeclaredLater(t *testing.T) {
	cfg := olConfig(t, "hub")
	n := olStart(t, cfg)
	n.put("contacts", "a", map[string]any{"email": "x"})
	n.put("contacts", "b", map[string]any{"email": "x"})
	n.stop()
	n.cfg.Tables = map[string]TableConfig{"contacts": {Keys: []string{"email"}}}
	n.start()
	if got := n.dupConflicts(); len(got) != 0 {
		t.Fatalf("existing records flagged: %v", got)
	}
	n.put("contacts", "c", map[string]any{"email": "x"})
	olEventually(t, "c flagged", func() bool { return reflect.DeepEqual(n.dupConflicts(), []string{"contacts/c:a,b"}) })
	n.stop()
	n.cfg.Tables = nil
	n.start()
	n.dupConflicts() // answered once the replica started
	n.a.cur.RLock()
	ts, err := n.a.cur.Get().store.KeyIndexTables()
	n.a.cur.RUnlock()
	if err != nil || len(ts) != 0 {
		t.Fatalf("index of undeclared tables: %v, %v", ts, err)
	}
}

// hookServer is a webhook receiver failing while fail is set.
type hookServer struct {
	mu    sync.Mutex
	fail  int // answer 500 to this many more requests (-1: always)
	got   []workflows.Payload
	calls int
	srv   *httptest.Server
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.fail != 0 {
			if h.fail > 0 {
				h.fail--
			}
			http.Error(w, "not now", 500)
			return
		}
		var p workflows.Payload
		if err := json.Unmarshal(body, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", 400)
			return
		}
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.got {
		out = append(out, p.Table+"/"+p.ID)
	}
	return out
}

func (h *hookServer) setFail(n int) {
	h.mu.Lock()
	h.fail = n
	h.mu.Unlock()
}

// TestWorkflowWebhook: changes of the workflow's table are POSTed in
// the order the hub accepted them (from a device and local), failing
// attempts are retried with backoff and recorded, other tables are not
// delivered; the cursor survives a restart, so a change not confirmed
// before it is delivered after it and confirmed ones are not repeated.
func TestWorkflowWebhook(t *testing.T) {
	h := newHookServer(t)
	h.setFail(2)
	hcfg := olConfig(t, "hub")
	hcfg.Workflows = []WorkflowConfig{{Name: "notify", Table: "jobs", Webhook: h.srv.URL, Timeout: 5 * time.Second, MaxBackoff: 200 * time.Millisecond}}
	hub := olStart(t, hcfg)
	dcfg := olConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev := olStart(t, dcfg)

	dev.put("jobs", "j1", map[string]any{"title": "pump"})
	dev.put("other", "x1", map[string]any{"v": 1})
	dev.put("jobs", "j2", map[string]any{"title": "valve"})
	dev.sync()
	hub.put("jobs", "j3", map[string]any{"title": "hub"})
	olEventually(t, "three deliveries", func() bool { return len(h.ids()) >= 3 })
	if got := h.ids(); !reflect.DeepEqual(got, []string{"jobs/j1", "jobs/j2", "jobs/j3"}) {
		t.Fatalf("delivered %v", got)
	}
	p := h.got[0]
	if p.Workflow != "notify" || string(p.Fields["title"]) != `"pump"` || p.Record == nil || string(p.Record.Fields["title"]) != `"pump"` || p.Delivery == "" {
		t.Fatalf("payload = %+v", p)
	}
	var list struct{ Workflows []workflows.Status }
	olEventually(t, "the third outcome recorded", func() bool {
		hub.call("GET", "/v1/workflows", nil, &list)
		return len(list.Workflows) == 1 && list.Workflows[0].Delivered == 3
	})
	wf := list.Workflows[0]
	if wf.Delivered != 3 || wf.Attempts != 5 || !strings.Contains(wf.LastError, "HTTP 500") || wf.Cursor != wf.FeedHead {
		t.Fatalf("workflow = %+v", wf)
	}
	// The counters move with the outcome; the retrying gauge clears just
	// after it (the delivery loop resets its attempt count next).
	var prom []byte
	olEventually(t, "the workflow metrics after three deliveries", func() bool {
		resp, err := http.Get("http://" + hub.a.APIAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		prom, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(prom), `replicad_workflow_retrying{workflow="notify"} 0`)
	})
	for _, m := range []string{`replicad_workflow_delivered_total{workflow="notify"} 3`, `replicad_workflow_attempts_total{workflow="notify"} 5`,
		`replicad_workflow_backlog{workflow="notify"} 0`} {
		if !strings.Contains(string(prom), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	var one struct {
		Deliveries []workflows.Delivery
	}
	hub.call("GET", "/v1/workflows/notify/deliveries", nil, &one)
	if len(one.Deliveries) != 3 || one.Deliveries[2].ID != "j1" || one.Deliveries[2].Attempts != 3 || one.Deliveries[0].Status != "delivered" {
		t.Fatalf("deliveries = %+v", one.Deliveries)
	}
	if code := hub.call("GET", "/v1/workflows/nope", nil, nil); code != 404 {
		t.Fatalf("unknown workflow: %d", code)
	}

	// Unconfirmed across a restart: delivered after it, once.
	h.setFail(-1)
	dev.put("jobs", "j4", map[string]any{"title": "late"})
	dev.sync()
	olEventually(t, "an attempt at j4", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.calls >= 7
	})
	hub.stop()
	h.setFail(0)
	hub.start()
	olEventually(t, "j4 after the restart", func() bool { return len(h.ids()) >= 4 })
	// Positive signal before checking for repeats: the workflow has
	// confirmed everything up to the feed's head after the restart, so a
	// repeat of a confirmed change would already have been delivered.
	olEventually(t, "the workflow caught up after the restart", func() bool {
		var l struct{ Workflows []workflows.Status }
		hub.call("GET", "/v1/workflows", nil, &l)
		return len(l.Workflows) == 1 && l.Workflows[0].Cursor == l.Workflows[0].FeedHead && l.Workflows[0].State == "idle"
	})
	if got := h.ids(); !reflect.DeepEqual(got, []string{"jobs/j1", "jobs/j2", "jobs/j3", "jobs/j4"}) {
		t.Fatalf("delivered %v", got)
	}
}

// TestWorkflowCommand: a command gets the change on stdin; one that
// fails is given up after max_attempts (recorded as failed) and the next
// change is delivered.
func TestWorkflowCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := fmt.Sprintf(`p=$(cat); case "$p" in *'"bad"'*) echo refused >&2; exit 3;; esac; printf '%%s\n' "$p" >> %s`, out)
	cfg := olConfig(t, "hub")
	cfg.Workflows = []WorkflowConfig{{Name: "cmd", Command: []string{"sh", "-c", script}, Timeout: 5 * time.Second,
		MaxBackoff: 50 * time.Millisecond, MaxAttempts: 2}}
	n := olStart(t, cfg)
	n.put("jobs", "a", map[string]any{"v": "bad"})
	n.put("jobs", "b", map[string]any{"v": "good"})
	olEventually(t, "b delivered", func() bool {
		b, _ := os.ReadFile(out)
		return bytes.Contains(b, []byte(`"good"`))
	})
	b, _ := os.ReadFile(out)
	if lines := strings.Count(string(b), "\n"); lines != 1 {
		t.Fatalf("%d payloads written, want 1: %s", lines, b)
	}
	var one struct {
		Workflow   workflows.Status
		Deliveries []workflows.Delivery
	}
	olEventually(t, "outcomes recorded", func() bool {
		n.call("GET", "/v1/workflows/cmd", nil, &one)
		return len(one.Deliveries) == 2
	})
	if d := one.Deliveries[1]; d.ID != "a" || d.Status != "failed" || d.Attempts != 2 || !strings.Contains(d.Error, "refused") {
		t.Fatalf("failed delivery = %+v", d)
	}
	if one.Workflow.Failed != 1 || one.Workflow.Delivered != 1 {
		t.Fatalf("workflow = %+v", one.Workflow)
	}
}

// TestOnlineConfig: table and workflow blocks in the file, --keys, and
// the errors of bad ones.
func TestOnlineConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.hcl")
	os.WriteFile(file, []byte(`role = "hub"
table "contacts" {
  keys = ["email", "org"]
}
workflow "notify" {
  table = "jobs"
  webhook = "http://127.0.0.1:9/hook"
  max_backoff = "30s"
}
workflow "run" {
  command = ["/bin/true", "x"]
  max_attempts = 3
}
`), 0o644)
	cfg, err := ParseArgs([]string{"--config", file, "--keys", "jobs=ref", "--data-dir", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Tables, map[string]TableConfig{"contacts": {Keys: []string{"email", "org"}}, "jobs": {Keys: []string{"ref"}}}) {
		t.Fatalf("tables = %+v", cfg.Tables)
	}
	if len(cfg.Workflows) != 2 || cfg.Workflows[0].MaxBackoff != 30*time.Second || cfg.Workflows[0].Timeout != config.DefaultWorkflowTimeout ||
		cfg.Workflows[1].MaxAttempts != 3 || !reflect.DeepEqual(cfg.Workflows[1].Command, []string{"/bin/true", "x"}) {
		t.Fatalf("workflows = %+v", cfg.Workflows)
	}
	for _, bad := range []string{
		`role = "hub"` + "\n" + `workflow "w" { table = "jobs" }`,
		`role = "hub"` + "\n" + `workflow "w" { webhook = "ftp://x" }`,
		`role = "hub"` + "\n" + `workflow "w" { webhook = "http://x" command = ["a"] }`,
		`role = "hub"` + "\n" + `workflow "w" { webhook = "http://x" unknown = 1 }`,
		`table "t" { keys = ["a", "a"] }`,
		`table "_replicad_x" { keys = ["a"] }`,
	} {
		os.WriteFile(file, []byte(bad), 0o644)
		if _, err := ParseArgs([]string{"--config", file}, io.Discard); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
	if _, err := ParseArgs([]string{"--keys", "jobs"}, io.Discard); err == nil {
		t.Error("--keys jobs accepted")
	}
}

// TestWorkflowAfterArbiter: on a server-wins table a change the arbiter
// rejects is delivered after the decision is carried out: the payload
// has the change as made and the record as restored; the arbiter's undo
// follows it.
func TestWorkflowAfterArbiter(t *testing.T) {
	h := newHookServer(t)
	hcfg := olConfig(t, "hub")
	hcfg.Policies = map[string]string{"jobs": "server-wins"}
	hcfg.Workflows = []WorkflowConfig{{Name: "w", Table: "jobs", Webhook: h.srv.URL, Timeout: 5 * time.Second, MaxBackoff: time.Second}}
	hub := olStart(t, hcfg)
	dcfg := olConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev := olStart(t, dcfg)
	hub.put("jobs", "j1", map[string]any{"start": 8})
	dev.sync()
	dev.put("jobs", "j1", map[string]any{"start": 9}) // not seen by the hub yet
	hub.put("jobs", "j1", map[string]any{"end": 12})  // accepted first: the device's change is rejected
	dev.sync()
	olEventually(t, "four deliveries", func() bool { return len(h.ids()) >= 4 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 4 {
		t.Fatalf("%d deliveries", len(h.got))
	}
	devNode := dev.a.cur.Get().node.String()
	p := h.got[2]
	if p.Origin != devNode || string(p.Fields["start"]) != "9" || p.Record == nil || string(p.Record.Fields["start"]) != "8" || string(p.Record.Fields["end"]) != "12" {
		t.Fatalf("the rejected change was delivered as %+v (record %+v)", p, p.Record)
	}
	if u := h.got[3]; u.Origin == devNode || string(u.Fields["start"]) != "8" {
		t.Fatalf("the undo was delivered as %+v", u)
	}
}

// TestExampleHubOnlineConfig: the sample of README's "Duplicate
// detection and workflows" loads and says what it shows.
func TestExampleHubOnlineConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadFile("../examples/hub-online.hcl"); err != nil {
		t.Fatal(err)
	}
	if c.Role != "hub" || !reflect.DeepEqual(c.Tables["contacts"].Keys, []string{"email", "org"}) || len(c.Workflows) != 2 ||
		c.Workflows[0].Table != "jobs" || c.Workflows[0].Webhook == "" || c.Workflows[1].MaxAttempts != 5 || len(c.Workflows[1].Command) != 3 {
		t.Fatalf("examples/hub-online.hcl: %+v", c)
	}
}

// TestDuplicateFlagPendingAtStart: a flag detected in a batch but not
// yet published when the hub stopped (a crash right after the batch) is
// published at the next start.
func TestDuplicateFlagPendingAtStart(t *testing.T) {
	cfg := olConfig(t, "hub")
	cfg.Tables = map[string]TableConfig{"contacts": {Keys: []string{"email"}}}
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cur.Get().store.Update(func(b *store.Batch) error {
		b.PutDupPending("contacts", "c2", []byte(`{"with":["c1"],"keys":{"email":"x"},"detected":1}`))
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	n := &olNode{t: t, cfg: cfg, a: a, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	olEventually(t, "the pending flag published", func() bool {
		return reflect.DeepEqual(n.dupConflicts(), []string{"contacts/c2:c1"})
	})
	if ps, err := a.cur.Get().store.DupPendings(0); err != nil || len(ps) != 0 {
		t.Fatalf("still pending: %v, %v", ps, err)
	}
}
