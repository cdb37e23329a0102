package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
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

// TestSyncReturnsArbitratedOutcomes: after one `replicad sync`, a device
// shows the arbiter's decisions on the changes it made offline, and the
// sync errors they caused: under client-wins its change, which reached
// the hub last, wins over the dispatcher's later one (before, the
// device showed the dispatcher's value until its next pull); under
// server-wins its change made without seeing the dispatcher's is undone.
// A write the arbiter cannot decide (the hub gone) is listed undecided;
// with no arbitrating hub the sync returns at once saying tentative.
func TestSyncReturnsArbitratedOutcomes(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "wo_cw=client-wins", "--policy", "wo_sw=server-wins")
	d := startNode(t, "device", "--hub", hub.sync)
	ctx := context.Background()
	end := func(n *node, table string) string {
		r, err := n.client().Get(ctx, table, "WO-1")
		if err != nil {
			return err.Error()
		}
		return string(r.Fields["end"])
	}
	hub.mustCLI("put", "wo_cw", "WO-1", "end:=17")
	hub.mustCLI("put", "wo_sw", "WO-1", "end:=17")
	eventually(t, "the work orders on the device", func() error {
		if end(d, "wo_cw") != "17" || end(d, "wo_sw") != "17" {
			return fmt.Errorf("device shows %s, %s", end(d, "wo_cw"), end(d, "wo_sw"))
		}
		return nil
	})

	d.mustCLI("offline")
	d.mustCLI("put", "wo_cw", "WO-1", "end:=19")   // the technician, offline
	hub.mustCLI("put", "wo_cw", "WO-1", "end:=18") // the dispatcher, later
	hub.mustCLI("put", "wo_sw", "WO-1", "end:=18") // the dispatcher first
	d.mustCLI("put", "wo_sw", "WO-1", "end:=19")   // then the technician, who had not seen it
	d.mustCLI("online")                            // a background round starts at once
	var sum client.Summary
	out := d.mustCLI("sync")
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("replicad sync: %s: %v", out, err)
	}
	// At once, no waiting: the outcome and its errors.
	if got := end(d, "wo_cw"); got != "19" {
		t.Fatalf("client-wins: the device shows end=%s after its sync, want the decided 19 (summary %s)", got, out)
	}
	if got := end(d, "wo_sw"); got != "18" {
		t.Fatalf("server-wins: the device shows end=%s after its sync, want the restored 18 (summary %s)", got, out)
	}
	if sum.Decisions == nil || sum.Decisions.State != "decided" {
		t.Fatalf("decisions after the sync: %s", out)
	}
	policies := map[string]bool{}
	for _, e := range sum.SyncErrors {
		policies[e.Table+"/"+e.Policy] = true
	}
	// Both, whichever session brought them (the background round and a
	// pull on news may have, before the sync was asked for).
	if !policies["wo_cw/client-wins"] || !policies["wo_sw/server-wins"] {
		t.Fatalf("the sync's errors: %+v", sum.SyncErrors)
	}
	if end(hub, "wo_cw") != "19" || end(hub, "wo_sw") != "18" {
		t.Fatalf("the hub shows %s, %s", end(hub, "wo_cw"), end(hub, "wo_sw"))
	}

	// The arbiter gone: a new change is listed undecided, at once.
	hub.stop()
	d.mustCLI("put", "wo_cw", "WO-1", "end:=20")
	start := time.Now()
	out, _, _ = d.cli("sync")
	sum = client.Summary{}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("replicad sync with the hub down: %s: %v", out, err)
	}
	if dc := sum.Decisions; dc == nil || dc.State != "undecided" || dc.Count != 1 || len(dc.Undecided) != 1 || dc.Undecided[0].Table != "wo_cw" ||
		!strings.Contains(dc.Detail, "unreachable") || time.Since(start) > 5*time.Second {
		t.Fatalf("sync with the arbiter down (%v): %s", time.Since(start), out)
	}

	// No arbitrating hub: tentative, at once.
	h2 := startNode(t, "hub2", "--role", "hub", "--gossip-addr", "off", "--no-arbiter", "--policy", "wo_cw=client-wins")
	d2 := startNode(t, "device2", "--hub", h2.sync)
	d2.mustCLI("put", "wo_cw", "WO-2", "end:=5")
	start = time.Now()
	out = d2.mustCLI("sync")
	sum = client.Summary{}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Decisions == nil || sum.Decisions.State != "tentative" || time.Since(start) > 5*time.Second {
		t.Fatalf("sync with no arbiter (%v): %s %v", time.Since(start), out, err)
	}
}
