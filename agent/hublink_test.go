package agent

import (
	"context"
	"testing"
	"time"
)

// TestWatchOverTLS: in a TLS cluster a device's watch connection with its
// hub is authenticated like a session and brings the hub's writes without
// a sync asked for (pull interval: an hour); a device of another CA gets
// no watch.
func TestWatchOverTLS(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub", "dev1": "device"})
	hub, hubLogs := runAgent(t, withTLS(testConfig(t, "hub"), pki, "hub"))
	dcfg := withTLS(testConfig(t, "device"), pki, "dev1")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, _ := runAgent(t, dcfg)
	waitLog(t, hubLogs, "watch connection open")
	hub.write(t, "jobs", "j1", "title", "from the hub")
	deadline := time.Now().Add(5 * time.Second)
	for !dev.has("jobs", "j1") {
		if time.Now().After(deadline) {
			t.Fatal("the hub's write did not reach the device over its watch connection")
		}
		time.Sleep(10 * time.Millisecond)
	}

	other := tlsCluster(t, map[string]string{"intruder": "device"})
	icfg := withTLS(testConfig(t, "device"), other, "intruder")
	icfg.Hubs = []string{hub.syncAddr()}
	runAgent(t, icfg)
	waitLog(t, hubLogs, "incoming session failed") // its watch's TLS handshake
	hub.cur.RLock()
	n := hub.cur.Get().engine.Watchers()
	hub.cur.RUnlock()
	if n != 1 {
		t.Fatalf("the hub serves %d watch connections, want the device's only", n)
	}
}

// TestSyncRoundWaitsForDecisions: a sync asked for on a device returns
// with the arbiter's client-wins decision on the write it made offline,
// whether the round or the background round started by going online
// carried the write to the hub.
func TestSyncRoundWaitsForDecisions(t *testing.T) {
	hcfg := testConfig(t, "hub")
	hcfg.Policies = map[string]string{"wo": "client-wins"}
	hub, _ := runAgent(t, hcfg)
	dcfg := testConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, _ := runAgent(t, dcfg)
	hub.write(t, "wo", "1", "end", 17)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	end := func(a *Agent) string {
		a.cur.RLock()
		defer a.cur.RUnlock()
		rec, err := a.cur.Get().store.Get("wo", "1")
		if err != nil {
			return err.Error()
		}
		v, _ := rec.Get("end")
		return v.String()
	}
	waitFor("the record on the device", func() bool { return end(dev) == "17" })
	dev.cur.RLock()
	dev.cur.Get().setOnline(false)
	dev.cur.RUnlock()
	dev.write(t, "wo", "1", "end", 19)
	hub.write(t, "wo", "1", "end", 18)
	dev.cur.RLock()
	dev.cur.Get().setOnline(true) // a background round pushes the write at once
	dev.cur.RUnlock()
	dev.cur.RLock()
	sum := dev.syncRound(context.Background(), dev.cur.Get(), 10*time.Second)
	dev.cur.RUnlock()
	if sum.Decisions == nil || sum.Decisions.State != "decided" || end(dev) != "19" {
		t.Fatalf("after the sync: the device shows %s, decisions %+v", end(dev), sum.Decisions)
	}
	if len(sum.SyncErrors) == 0 {
		t.Fatal("no sync error in the summary")
	}
}
