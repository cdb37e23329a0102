package replica

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, cfg Config) *Replica {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.NoSync = true
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{})
	if _, err := r.Get(ctx, "jobs", "j1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a record never written: %v, want ErrNotFound", err)
	}
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"status": "open", "prio": 3, "tags": []any{"a"}, "x": nil}); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"prio": 2.5}); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Table != "jobs" || rec.ID != "j1" || rec.Fields["status"] != "open" || rec.Fields["prio"] != 2.5 ||
		len(rec.Fields["tags"].([]any)) != 1 || rec.Fields["x"] != nil || len(rec.Fields) != 4 {
		t.Fatalf("Get = %+v", rec)
	}
	if rec.Conflicts != nil || rec.Pending {
		t.Fatalf("a lone replica's record has conflicts or is pending: %+v", rec)
	}
	if err := r.Delete(ctx, "jobs", "j1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "jobs", "j1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"status": "again"}); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Get(ctx, "jobs", "j1"); err != nil || rec.Fields["status"] != "again" {
		t.Fatalf("Get after re-creating: %+v %v", rec, err)
	}
}

// Data survive a Close and a reopening of the directory, under the same
// node id.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id := r.NodeID()
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = open(t, Config{DataDir: dir})
	if r.NodeID() != id {
		t.Fatalf("node id %s after reopening, was %s", r.NodeID(), id)
	}
	if rec, err := r.Get(ctx, "jobs", "j1"); err != nil || rec.Fields["n"] != int64(1) {
		t.Fatalf("after reopening: %+v %v", rec, err)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{})
	long := strings.Repeat("t", 65)
	for _, c := range []struct {
		name      string
		table, id string
		fields    map[string]any
		want      string
	}{
		{"empty table", "", "j1", map[string]any{"a": 1}, "table name"},
		{"bad table", "jobs/x", "j1", map[string]any{"a": 1}, "table name"},
		{"long table", long, "j1", map[string]any{"a": 1}, "table name"},
		{"system table", "_replicad_policies", "j1", map[string]any{"a": 1}, "system table"},
		{"empty id", "jobs", "", map[string]any{"a": 1}, "record id"},
		{"NUL in id", "jobs", "a\x00b", map[string]any{"a": 1}, "record id"},
		{"no fields", "jobs", "j1", nil, "no fields"},
		{"empty field name", "jobs", "j1", map[string]any{"": 1}, "empty field name"},
		{"channel value", "jobs", "j1", map[string]any{"ok": 1, "c": make(chan int)}, `field "c"`},
		{"struct value", "jobs", "j1", map[string]any{"s": struct{ A int }{1}}, `field "s"`},
		{"nested func", "jobs", "j1", map[string]any{"m": map[string]any{"f": func() {}}}, `field "m"`},
	} {
		err := r.Put(ctx, c.table, c.id, c.fields)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Put = %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
	}
	if err := r.Delete(ctx, "", "j1"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Delete with an empty table: %v", err)
	}
	if err := r.Delete(ctx, "jobs", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Delete with an empty id: %v", err)
	}
	if _, err := r.Get(ctx, "jobs", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Get with an empty id: %v", err)
	}
	// Nothing was stored: no record of table jobs, and no local write
	// at all (the store's own sequence did not move).
	res, err := r.Query(ctx, Query{Table: "jobs", Count: true})
	if err != nil || res.Count != 0 {
		t.Fatalf("records after refused writes: %+v %v", res, err)
	}
	if seq := r.st.HeldOf(r.st.NodeID()).Max(); seq != 0 {
		t.Fatalf("refused writes made %d local writes", seq)
	}
	for _, q := range []Query{
		{},
		{Table: "jobs", Where: "prio >="},
		{Table: "jobs", Order: []string{""}},
		{Table: "jobs", Limit: -1},
		{Table: "jobs", Cursor: "garbage"},
	} {
		if _, err := r.Query(ctx, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("Query(%+v) = %v, want ErrInvalid", q, err)
		}
	}
	if _, err := r.Watch(ctx, Query{Table: "jobs", Count: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Watch with Count: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "DataDir"},
		{Config{DataDir: t.TempDir(), Role: "server"}, "Role"},
		{Config{DataDir: t.TempDir(), Hubs: []string{"nohostport"}}, "Hubs"},
		{Config{DataDir: t.TempDir(), GossipAddr: "nohostport"}, "GossipAddr"},
		{Config{DataDir: t.TempDir(), Policies: map[string]string{"jobs": "mine-wins"}}, "Policies"},
	} {
		r, err := Open(ctx, c.cfg)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want ErrInvalid naming %s", c.cfg, err, c.want)
		}
	}
	// A busy sync address: refused before the data directory is used.
	busy := open(t, Config{SyncAddr: "127.0.0.1:0"})
	if r, err := Open(ctx, Config{DataDir: t.TempDir(), SyncAddr: busy.SyncAddr()}); err == nil {
		r.Close()
		t.Fatal("Open on a busy sync address succeeded")
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{})
	for i, st := range []string{"open", "done", "open", "open", "done"} {
		id := string(rune('a' + i))
		if err := r.Put(ctx, "jobs", id, map[string]any{"status": st, "prio": i}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.Query(ctx, Query{Table: "jobs", Where: "status == 'open'", Order: []string{"-prio"}, Limit: 2, Fields: []string{"prio"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 2 || res.Records[0].ID != "d" || res.Records[1].ID != "c" || res.Next == "" {
		t.Fatalf("first page: %+v", res)
	}
	if _, ok := res.Records[0].Fields["status"]; ok || res.Records[0].Fields["prio"] != int64(3) {
		t.Fatalf("projection: %+v", res.Records[0].Fields)
	}
	res, err = r.Query(ctx, Query{Table: "jobs", Where: "status == 'open'", Order: []string{"-prio"}, Limit: 2, Fields: []string{"prio"}, Cursor: res.Next})
	if err != nil || len(res.Records) != 1 || res.Records[0].ID != "a" || res.Next != "" {
		t.Fatalf("second page: %+v %v", res, err)
	}
	res, err = r.Query(ctx, Query{Table: "jobs", Where: "status == 'done'", Count: true})
	if err != nil || res.Count != 2 {
		t.Fatalf("count: %+v %v", res, err)
	}
	res, err = r.Query(ctx, Query{Table: "jobs", Explain: true})
	if err != nil || res.Plan == nil || res.Plan.Index != "" || res.Plan.Examined != 5 || len(res.Records) != 5 {
		t.Fatalf("explain: %+v %v", res, err)
	}
	if err := r.Delete(ctx, "jobs", "d"); err != nil {
		t.Fatal(err)
	}
	res, err = r.Query(ctx, Query{Table: "jobs", Where: "status == 'open'"})
	if err != nil || len(res.Records) != 2 {
		t.Fatalf("after a delete: %+v %v", res, err)
	}
}

// waitEvent returns the next event or fails after a bound.
func waitEvent(t *testing.T, ch <-chan Event) (Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return Event{}, false
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{})
	if err := r.Put(ctx, "jobs", "a", map[string]any{"status": "open"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := r.Watch(wctx, Query{Table: "jobs", Where: "status == 'open'"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := waitEvent(t, ch); ev.Type != "result" || len(ev.Records) != 1 || ev.Records[0].ID != "a" {
		t.Fatalf("first event: %+v", ev)
	}
	r.Put(ctx, "jobs", "a", map[string]any{"status": "open", "n": 1})
	if ev, _ := waitEvent(t, ch); ev.Type != "change" || ev.Record.Fields["n"] != int64(1) {
		t.Fatalf("change: %+v", ev)
	}
	r.Put(ctx, "jobs", "a", map[string]any{"status": "done"})
	if ev, _ := waitEvent(t, ch); ev.Type != "remove" || ev.Record.ID != "a" {
		t.Fatalf("remove: %+v", ev)
	}
	cancel()
	for {
		if _, ok := waitEvent(t, ch); !ok {
			break // closed on ctx's cancellation
		}
	}
	// Close closes a watch's channel too.
	ch, err = r.Watch(ctx, Query{Table: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch)
	r.Close()
	if _, ok := waitEvent(t, ch); ok {
		t.Fatal("an event after Close")
	}
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0"})
	dev := open(t, Config{SyncAddr: "127.0.0.1:0", Hubs: []string{hub.SyncAddr()}})
	other := open(t, Config{Hubs: []string{hub.SyncAddr()}})
	if other.SyncAddr() != "" {
		t.Fatalf("SyncAddr without a listener: %q", other.SyncAddr())
	}
	// A watch on the hub sees the device's write once a sync brought it.
	ch, err := hub.Watch(ctx, Query{Table: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := waitEvent(t, ch); ev.Type != "result" || len(ev.Records) != 0 {
		t.Fatalf("hub's first event: %+v", ev)
	}
	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"status": "open"}); err != nil {
		t.Fatal(err)
	}
	rep, err := dev.SyncRound(ctx)
	if err != nil || rep.Partners != 1 || rep.Succeeded != 1 || len(rep.Failed) != 0 {
		t.Fatalf("SyncRound: %+v %v", rep, err)
	}
	if ev, _ := waitEvent(t, ch); ev.Type != "add" || ev.Record.ID != "j1" || ev.Record.Fields["status"] != "open" {
		t.Fatalf("hub's event after the sync: %+v", ev)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := other.Get(ctx, "jobs", "j1"); err != nil || rec.Fields["status"] != "open" {
		t.Fatalf("the device's write, through the hub: %+v %v", rec, err)
	}
	// A delete travels the same way.
	if err := other.Delete(ctx, "jobs", "j1"); err != nil {
		t.Fatal(err)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Get(ctx, "jobs", "j1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a delete synced: %v", err)
	}
	// A partner that is gone: an error naming it.
	gone := hub.SyncAddr()
	hub.Close()
	err = dev.Sync(ctx)
	if err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("Sync with the hub closed: %v, want an error naming %s", err, gone)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{SyncAddr: "127.0.0.1:0"})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"a": 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Put: %v", err)
	}
	if _, err := r.Get(ctx, "jobs", "j1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get: %v", err)
	}
	if err := r.Delete(ctx, "jobs", "j1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete: %v", err)
	}
	if _, err := r.Query(ctx, Query{Table: "jobs"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Query: %v", err)
	}
	if _, err := r.Watch(ctx, Query{Table: "jobs"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch: %v", err)
	}
	if err := r.Sync(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync: %v", err)
	}
}

// Close stops every goroutine the replicas started: the goroutine count
// returns to where it was before they were opened.
func TestCloseStopsGoroutines(t *testing.T) {
	ctx := context.Background()
	before := runtime.NumGoroutine()
	hub, err := Open(ctx, Config{DataDir: t.TempDir(), Role: "hub", SyncAddr: "127.0.0.1:0", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := Open(ctx, Config{DataDir: t.TempDir(), SyncAddr: "127.0.0.1:0", Hubs: []string{hub.SyncAddr()}, NoSync: true,
		GossipAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	dev.Put(ctx, "jobs", "j1", map[string]any{"a": 1})
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := dev.Watch(ctx, Query{Table: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch)
	if runtime.NumGoroutine() <= before {
		t.Fatal("no goroutine was started")
	}
	dev.Close()
	hub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A table with the manual policy keeps concurrent writes of a field as
// candidates: Get lists them under Conflicts.
func TestConflicts(t *testing.T) {
	ctx := context.Background()
	pol := map[string]string{"jobs": "manual"}
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", Policies: pol})
	a := open(t, Config{Hubs: []string{hub.SyncAddr()}, Policies: pol})
	b := open(t, Config{Hubs: []string{hub.SyncAddr()}, Policies: pol})
	if err := a.Put(ctx, "jobs", "j1", map[string]any{"status": "open"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "jobs", "j1", map[string]any{"status": "done"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Replica{a, b, a} {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := a.Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	cs := rec.Conflicts["status"]
	if len(cs) != 2 {
		t.Fatalf("conflicts: %+v", rec)
	}
	got := map[any]string{}
	for _, c := range cs {
		got[c.Value] = c.Node
		if c.Time.IsZero() || c.Deleted {
			t.Fatalf("candidate %+v", c)
		}
	}
	if got["open"] != a.NodeID() || got["done"] != b.NodeID() {
		t.Fatalf("candidates by node: %v (a %s, b %s)", got, a.NodeID(), b.NodeID())
	}
	// A query's records and a watch's carry the candidates as Get does
	// (a projection keeps those of the fields it keeps).
	if err := a.Put(ctx, "jobs", "j1", map[string]any{"prio": 2}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Query(ctx, Query{Table: "jobs", Where: "prio == 2"})
	if err != nil || len(res.Records) != 1 || len(res.Records[0].Conflicts["status"]) != 2 {
		t.Fatalf("query: %v %+v", err, res)
	}
	res, err = a.Query(ctx, Query{Table: "jobs", Where: "prio == 2", Fields: []string{"prio"}})
	if err != nil || len(res.Records) != 1 || res.Records[0].Conflicts != nil {
		t.Fatalf("query of prio: %v %+v", err, res)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := a.Watch(wctx, Query{Table: "jobs", Where: "prio >= 2"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != "result" || len(ev.Records) != 1 || len(ev.Records[0].Conflicts["status"]) != 2 {
		t.Fatalf("watch: %+v", ev)
	}
}

// Replicas of different clusters do not sync; the error names the
// partner.
func TestClusterMismatch(t *testing.T) {
	ctx := context.Background()
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", ClusterID: "east"})
	dev := open(t, Config{Hubs: []string{hub.SyncAddr()}})
	dev.Put(ctx, "jobs", "j1", map[string]any{"a": 1})
	if err := dev.Sync(ctx); err == nil || !strings.Contains(err.Error(), hub.SyncAddr()) || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("Sync across clusters: %v", err)
	}
	if _, err := hub.Get(ctx, "jobs", "j1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a write crossed clusters: %v", err)
	}
}
