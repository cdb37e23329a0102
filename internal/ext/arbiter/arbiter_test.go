package arbiter

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// host is the arbiter's Host made of a node alone (what the agent gives
// it, without the agent).
type host struct{ *node.Node }

func (host) Log() hclog.Logger { return hclog.NewNullLogger() }

// TestDecisionThroughHost: on a server-wins table the arbiter, plugged
// into a node's apply hooks, queues the undo of a device's write made
// without seeing the hub's; the write is pending (not decided) until
// Drain carries the decision out through the node's write pipeline,
// which restores the hub's value and logs the sync error.
func TestDecisionThroughHost(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "hub", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := hlc.NewClock(nil, time.Minute)
	n := node.New(node.Options{Store: st, Clock: clk, Policies: map[string]string{"jobs": "server-wins"}})
	if err := n.PublishPolicies(map[string]string{"jobs": "server-wins"}); err != nil {
		t.Fatal(err)
	}
	a := New(host{n})
	n.OnApply("arbiter", a.Hook)
	v := func(s string) []crdt.FieldValue { return []crdt.FieldValue{{Name: "status", Value: crdt.MustValue(s)}} }
	if _, err := n.Write("jobs", "j1", v("open"), false, nil); err != nil {
		t.Fatal(err)
	}
	dev := hlc.NodeID(0xd1)
	w := &crdt.Write{Table: "jobs", ID: "j1", Origin: dev, Seq: 1, TS: hlc.NewClock(nil, time.Minute).Now(), Fields: v("done")}
	hook := n.ApplyHook()
	if _, err := st.ApplyRemoteWith(clk, []*crdt.Write{w}, nil, func(b *store.Batch, res *store.Result) error {
		return hook(b, []*crdt.Write{w}, res)
	}); err != nil {
		t.Fatal(err)
	}
	if !a.Pending(dev, 1) || a.DecidedUpTo(dev) != 0 {
		t.Fatalf("before the drain: pending %v, decided up to %d; want pending, 0", a.Pending(dev, 1), a.DecidedUpTo(dev))
	}
	if err := a.Drain(); err != nil {
		t.Fatal(err)
	}
	if a.Pending(dev, 1) || a.DecidedUpTo(dev) != 1 {
		t.Fatalf("after the drain: pending %v, decided up to %d; want decided, 1", a.Pending(dev, 1), a.DecidedUpTo(dev))
	}
	rec, err := st.Get("jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := rec.Get("status"); string(got) != string(crdt.MustValue("open")) {
		t.Errorf("status after server-wins: %v, want open restored", got)
	}
	errs, err := st.ListSyncErrors(0, 10)
	if err != nil || len(errs) != 1 || errs[0].Kind != node.KindRejected || errs[0].Record != "j1" {
		t.Fatalf("sync errors %+v %v: want one rejection of j1", errs, err)
	}
	if qs, _ := st.QueueOf(Queue, -1); len(qs) != 0 {
		t.Fatalf("%d decisions left queued", len(qs))
	}
}
