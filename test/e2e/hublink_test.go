package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
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
	// No sync asked for: the device's watch connection pulls once at
	// connection, which tells it the hub's API.
	eventually(t, "an online read on a device started with --hub only", func() error {
		r, err := d.client().GetOnline(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if r.HubAPI != "http://"+hub.api || fieldsOf(t, &r.Record) != `{"title":"on the hub"}` {
			return fmt.Errorf("got %+v", r)
		}
		return nil
	})
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

// TestHubLinkBringsWritesWithinMoments: two devices started with --hub
// alone (pull interval at its default, a minute; no gossip) see each
// other's writes within about a second: each keeps a watch connection
// with the hub, which tells it of new writes. The latencies of 20 writes
// are logged.
func TestHubLinkBringsWritesWithinMoments(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	d1 := startNode(t, "d1", "--hub", hub.sync)
	d2 := startNode(t, "d2", "--hub", hub.sync)
	ctx := context.Background()
	var lat []time.Duration
	for i := 1; i <= 20; i++ {
		src, dst := d1, d2
		if i%2 == 0 {
			src, dst = d2, d1
		}
		start := time.Now()
		if _, err := src.client().Put(ctx, "jobs", "live", map[string]json.RawMessage{"n": json.RawMessage(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		deadline := start.Add(2 * time.Second)
		for {
			r, err := dst.client().Get(ctx, "jobs", "live")
			if err == nil && fieldsOf(t, r) == fmt.Sprintf(`{"n":%d}`, i) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %d from %s not on %s within 2s (last read %+v, %v)", i, src.name, dst.name, r, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("device-to-device latency through the hub over %d writes: min %v, median %v, max %v", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
}
