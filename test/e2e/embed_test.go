package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/replicad/replicad/replica"
)

// TestEmbeddedReplicaWithAgentHub: a replica embedded in this process
// (package replica) syncs with a hub run by the real binary, both ways.
func TestEmbeddedReplicaWithAgentHub(t *testing.T) {
	ctx := context.Background()
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	dev, err := replica.Open(ctx, replica.Config{DataDir: t.TempDir(), Role: "device",
		SyncAddr: "127.0.0.1:0", Hubs: []string{hub.sync}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()

	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"status": "open", "prio": 3}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := hub.client().Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatalf("the embedded replica's write on the agent hub: %v", err)
	}
	if got := fieldsOf(t, rec); got != `{"prio":3,"status":"open"}` {
		t.Fatalf("hub's record: %s", got)
	}

	if _, err := hub.client().Put(ctx, "jobs", "j2", map[string]json.RawMessage{"status": json.RawMessage(`"done"`)}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := dev.Get(ctx, "jobs", "j2")
	if err != nil || got.Fields["status"] != "done" {
		t.Fatalf("the hub's write on the embedded replica: %+v %v", got, err)
	}
}
