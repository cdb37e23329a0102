package replicacore

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		out := l.b.String()
		l.mu.Unlock()
		if strings.Contains(out, s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", s, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIndexReconcile: the loop Start runs declares in the store the
// indexes of node.IndexTable (logging the build's start and end),
// rebuilds one whose declaration changed, and drops one removed.
func TestIndexReconcile(t *testing.T) {
	st := openStore(t)
	logs := &logBuf{}
	c := New(Options{Store: st, Hub: true, Log: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	for i := range 1200 {
		if _, err := c.Node.Write("t", fmt.Sprintf("r%04d", i), []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue(fmt.Sprint("o", i%7))}}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustEngine(t, c, replication.Config{Local: replication.Local{Node: st.NodeID(), Role: "hub", Scope: replication.FullScope(), Clock: c.Clock, Store: st}})
	c.Start()
	defer c.Stop()
	def := store.IndexDef{Name: "by_owner", Table: "t", Fields: []string{"owner"}}
	if err := c.Node.PublishIndexes([]store.IndexDef{def}); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, `index build started: index=by_owner table=t fields=["owner"] records=1200`)
	logs.wait(t, "index built: index=by_owner table=t records=1200")
	if x, ok := st.Index("by_owner"); !ok || !x.Built || x.Indexed != 1200 {
		t.Fatalf("store index: %+v %v", x, ok)
	}
	def.Fields = []string{"owner", "x"}
	if err := c.Node.PublishIndexes([]store.IndexDef{def}); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, `index build started: index=by_owner table=t fields=["owner", "x"]`)
	if err := c.Node.PublishIndexes(nil); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "index dropped (no longer declared): index=by_owner")
	if xs := st.Indexes(); len(xs) != 0 {
		t.Fatalf("store indexes after the removal: %+v", xs)
	}
}

// TestBuildProgress: a progress line each time a build passes a tenth of
// the table, or after 10 s without one.
func TestBuildProgress(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := &build{started: t0, logged: t0, total: 1000}
	for _, step := range []struct {
		indexed int64
		after   time.Duration
		pct     int64
		due     bool
	}{
		{50, time.Second, 5, false},
		{100, 2 * time.Second, 10, true},
		{150, 3 * time.Second, 15, false},
		{190, 11 * time.Second, 19, false},
		{195, 12 * time.Second, 19, true}, // 10 s since the last line
		{950, 14 * time.Second, 95, true},
		{2000, 15 * time.Second, 99, false}, // the table grew: never 100 before built
	} {
		pct, due := b.progress(step.indexed, t0.Add(step.after))
		if pct != step.pct || due != step.due {
			t.Errorf("%d indexed after %v: %d%% due=%v, want %d%% due=%v", step.indexed, step.after, pct, due, step.pct, step.due)
		}
	}
}
