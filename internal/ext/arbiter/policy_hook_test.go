package arbiter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// nodeHost is the arbiter's Host made of a node alone.
type nodeHost struct{ *node.Node }

func (nodeHost) Log() hclog.Logger { return hclog.NewNullLogger() }

// TestArbiterReadsPolicyThroughBatch: the arbiter's hook runs inside the
// store's batch and reads the policy in force through it (a hook does not
// call the Store): a policy change and a write stamped after it that
// arrive in the same batch are judged by that change, as everywhere else
// (before, the hook read the committed policy table: no change yet, so
// lww).
func TestArbiterReadsPolicyThroughBatch(t *testing.T) {
	open := func(name string) *store.Store {
		st, err := store.Open(store.Options{Dir: name, FS: vfs.NewMem(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	hub, other, dev := open("hub"), open("hub2"), open("dev")
	clk := hlc.NewClock(nil, time.Minute)
	devClk := hlc.NewClock(func() int64 { return hlc.SystemClock() + 500 }, time.Minute)
	arb := New(nodeHost{node.New(node.Options{Store: hub, Clock: clk})})

	// The hub's value of jobs/1; the device writes it without having
	// seen it, after another hub made jobs server-wins.
	if _, err := hub.Write(clk, "jobs", "1", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue("hub")}}, false); err != nil {
		t.Fatal(err)
	}
	v := crdt.MustValue(string(policy.ServerWins))
	pw, err := other.Write(clk, node.PolicyTable, "jobs", []crdt.FieldValue{{Name: node.HistoryField(clk.Now()), Value: v}, {Name: "policy", Value: v}}, false)
	if err != nil {
		t.Fatal(err)
	}
	dw, err := dev.Write(devClk, "jobs", "1", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue("device")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := []*crdt.Write{pw, dw}
	if _, err := hub.ApplyRemoteWith(clk, ws, nil, func(b *store.Batch, res *store.Result) error {
		return arb.Hook(b, ws, res)
	}); err != nil {
		t.Fatal(err)
	}
	qs, err := hub.QueueOf(Queue, -1)
	if err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, q := range qs {
		var d Decision
		if err := json.Unmarshal(q.Value, &d); err != nil {
			t.Fatal(err)
		}
		policies = append(policies, d.Policy)
	}
	if len(policies) != 1 || policies[0] != string(policy.ServerWins) {
		t.Fatalf("decisions queued by policy %v, want one by server-wins (the policy change in the same batch)", policies)
	}
}
