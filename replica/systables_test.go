package replica

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// TestHubRefusesSystemTableWrites: a device that forges records of the
// system tables in its own store (a table policy, an index declaration,
// the deletion of the hub's declaration) and syncs with an embedded hub
// gets them refused by the rules the agent's hubs judge by: the hub does
// not take them (it and every other replica keep the hub's policy and
// declarations), it writes back over them, so that after its next sync
// the forging device holds the hub's values again, and it sends the
// device a sync error of policy "system" for each. The device's ordinary
// write made after them is taken, and so is what a device may write to a
// system table (a duplicate's resolution).
func TestHubRefusesSystemTableWrites(t *testing.T) {
	ctx := context.Background()
	x := Index{Name: "x", Table: "jobs", Fields: []string{"status"}}
	hub := open(t, Config{Role: RoleHub, SyncAddr: "127.0.0.1:0", Policies: map[string]string{"jobs": "server-wins"}, Indexes: []Index{x}})
	dev := open(t, Config{Hubs: []string{hub.SyncAddr()}})
	other := open(t, Config{Hubs: []string{hub.SyncAddr()}})
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	policyOf := func(r *Replica) string {
		t.Helper()
		rec, err := r.st.Get(node.PolicyTable, "jobs")
		if err != nil {
			t.Fatalf("%s: the policy record of jobs: %v", r.NodeID(), err)
		}
		v, _ := rec.Get("policy")
		s, _ := v.Decode()
		p, _ := s.(string)
		return p
	}
	declared := func(r *Replica) []store.IndexDef {
		t.Helper()
		ixs, err := r.n.DeclaredIndexes()
		if err != nil {
			t.Fatal(err)
		}
		return ixs
	}
	want := []store.IndexDef{{Name: x.Name, Table: x.Table, Fields: x.Fields}}
	if p := policyOf(dev); p != "server-wins" || !reflect.DeepEqual(declared(dev), want) {
		t.Fatalf("device before forging: policy %q, indexes %+v", p, declared(dev))
	}

	// The device forges, in its own store, over the hub's records (its
	// writes' contexts cover them), then writes a record of its own.
	lww := crdt.MustValue("lww")
	forge := func(table, id string, fields []crdt.FieldValue, del bool) {
		t.Helper()
		if _, err := dev.n.Write(table, id, fields, del, nil); err != nil {
			t.Fatal(err)
		}
	}
	forge(node.PolicyTable, "jobs", []crdt.FieldValue{{Name: node.HistoryField(dev.core.Clock.Now()), Value: lww}, {Name: "policy", Value: lww}}, false)
	forge(node.IndexTable, "forged", []crdt.FieldValue{{Name: "table", Value: crdt.MustValue("jobs")}, {Name: "fields", Value: crdt.MustValue([]any{"secret"})}}, false)
	forge(node.IndexTable, "x", nil, true)
	if p := policyOf(dev); p != "lww" || len(declared(dev)) != 1 || declared(dev)[0].Name != "forged" {
		t.Fatalf("the forgeries in the device's store: policy %q, indexes %+v", p, declared(dev))
	}
	// What a device may write to a system table (the agent's devices
	// resolve a suspected duplicate) is taken.
	forge(node.DuplicatesTable, "f1", []crdt.FieldValue{{Name: "status", Value: crdt.MustValue("kept")}}, false)
	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"status": "open"}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// The hub took none of them, and took the ordinary write.
	if p := policyOf(hub); p != "server-wins" {
		t.Errorf("hub: policy of jobs %q, want server-wins", p)
	}
	if got := declared(hub); !reflect.DeepEqual(got, want) {
		t.Errorf("hub: declared indexes %+v, want %+v", got, want)
	}
	if rec, err := hub.Get(ctx, "jobs", "j1"); err != nil || rec.Fields["status"] != "open" {
		t.Errorf("hub: the device's ordinary write: %+v %v", rec, err)
	}
	if rec, err := hub.st.Get(node.DuplicatesTable, "f1"); err != nil || !rec.Exists() {
		t.Errorf("hub: a device's resolution of a duplicate refused: %v", err)
	} else if v, _ := rec.Get("status"); string(v) != string(crdt.MustValue("kept")) {
		t.Errorf("hub: the duplicate's status %s, want kept", v)
	}
	// Another device obeys the hub.
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if k := other.n.PolicyOf("jobs"); k != policy.ServerWins {
		t.Errorf("other device: jobs judged %s, want server-wins", k)
	}
	if got := declared(other); !reflect.DeepEqual(got, want) {
		t.Errorf("other device: declared indexes %+v, want %+v", got, want)
	}

	// The forging device converges to the hub's values at its next sync,
	// with the refusals in its sync errors.
	deadline := time.Now().Add(10 * time.Second)
	for policyOf(dev) != "server-wins" || !reflect.DeepEqual(declared(dev), want) {
		if time.Now().After(deadline) {
			t.Fatalf("device after syncing: policy %q, indexes %+v; want the hub's", policyOf(dev), declared(dev))
		}
		if err := dev.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if k := dev.n.PolicyOf("jobs"); k != policy.ServerWins {
		t.Errorf("device: jobs judged %s, want server-wins", k)
	}
	var refused []string
	page, _, err := dev.st.Scan(node.ErrorTable, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range page {
		v, _ := en.Record.Get("error")
		s, _ := v.Decode()
		var e struct{ Policy, Table, Record string }
		if str, ok := s.(string); ok && json.Unmarshal([]byte(str), &e) == nil && e.Policy == node.SystemPolicy {
			refused = append(refused, e.Table+"/"+e.Record)
		}
	}
	if len(refused) != 3 {
		t.Errorf("device: system sync errors %v, want 3 (the policy, the forged index, the deleted one)", refused)
	}
}
