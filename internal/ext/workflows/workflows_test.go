package workflows

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// host is the workflows' Host made of a node alone.
type host struct{ *node.Node }

func (host) Log() hclog.Logger { return hclog.NewNullLogger() }

// pending is a Decisions whose answer the test sets; asked is told of
// each question.
type pending struct {
	mu    sync.Mutex
	not   bool
	asked chan hlc.NodeID
}

func (p *pending) Pending(origin hlc.NodeID, _ uint64) bool {
	select {
	case p.asked <- origin:
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.not
}

// TestWorkflowThroughHost: a workflow on a node alone, woken by the
// node's feed, holds a change back while the Decisions say it is
// pending, then delivers it with the record's state, and records the
// outcome with its cursor.
func TestWorkflowThroughHost(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "hub", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(node.Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	feed := node.NewFeed()
	n.OnWritten("feed", func(*crdt.Write) { feed.Notify() })
	got := make(chan Payload, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("payload %s: %v", b, err)
		}
		got <- p
	}))
	defer srv.Close()
	dec := &pending{asked: make(chan hlc.NodeID, 1)}
	ws, err := New(host{n}, feed, dec, []config.WorkflowConfig{{Name: "w", Table: "jobs", Webhook: srv.URL, Timeout: 5 * time.Second, MaxBackoff: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws.Start(ctx, &wg)
	defer func() { cancel(); feed.Close(); wg.Wait() }()

	// A remote write (origin set): held back while pending.
	w := &crdt.Write{Table: "jobs", ID: "j1", Origin: 0xd1, Seq: 1, TS: hlc.NewClock(nil, time.Minute).Now(),
		Fields: []crdt.FieldValue{{Name: "status", Value: crdt.MustValue("open")}}}
	if _, err := st.ApplyRemote(n.Clock(), []*crdt.Write{w}, nil); err != nil {
		t.Fatal(err)
	}
	feed.Notify()
	// The workflow asks about the change, is told it is pending, and asks
	// again (it polls): it holds the change back meanwhile.
	for i := 0; i < 2; i++ {
		select {
		case o := <-dec.asked:
			if o != 0xd1 {
				t.Fatalf("asked about origin %v, want d1", o)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the workflow never asked whether the change is decided")
		}
	}
	select {
	case p := <-got:
		t.Fatalf("delivered %+v while the decision is pending", p)
	default:
	}
	if v := ws.Find("w").View(); v.Delivered != 0 || v.Cursor != "0" || v.FeedHead != "1" {
		t.Fatalf("state while pending: %+v", v)
	}
	dec.mu.Lock()
	dec.not = true
	dec.mu.Unlock()
	select {
	case p := <-got:
		if p.Table != "jobs" || p.ID != "j1" || p.Record == nil || string(p.Record.Fields["status"]) != `"open"` {
			t.Fatalf("payload %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered once decided")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := ws.Find("w").Deliveries(0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == "delivered" && ws.Find("w").View().Cursor == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes %+v, state %+v", ds, ws.Find("w").View())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
