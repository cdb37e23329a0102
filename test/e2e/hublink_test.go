package e2e

import (
	"context"
	"testing"
)

// TestOnlineReadsWithHubOnly: a device started with --hub alone (no
// --hub-api, no gossip) reads online through the API address the hub
// tells it in the sync handshake, and lists the hub's gossip address.
func TestOnlineReadsWithHubOnly(t *testing.T) {
	hubGossip := freeAddr(t)
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", hubGossip)
	d := startNode(t, "device", "--hub", hub.sync)
	ctx := context.Background()
	hub.mustCLI("put", "jobs", "j1", "title=on the hub")
	d.mustCLI("sync")
	r, err := d.client().GetOnline(ctx, "jobs", "j1")
	if err != nil || r.HubAPI != "http://"+hub.api || fieldsOf(t, &r.Record) != `{"title":"on the hub"}` {
		t.Fatalf("online read on a device started with --hub only: %+v %v", r, err)
	}
	st, err := d.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.HubAPI != "http://"+hub.api {
		t.Fatalf("status hub_api %q, want http://%s", st.HubAPI, hub.api)
	}
	var found bool
	for _, p := range st.Peers {
		if p.Addr == hub.sync {
			found = true
			if p.APIAddr != hub.api || p.GossipAddr != hubGossip {
				t.Fatalf("the hub's partner entry: %+v; want api %s gossip %s", p, hub.api, hubGossip)
			}
		}
	}
	if !found {
		t.Fatalf("no partner %s in %+v", hub.sync, st.Peers)
	}
}
