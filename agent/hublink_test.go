package agent

import (
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
	hub.mu.RLock()
	n := hub.rep.engine.Watchers()
	hub.mu.RUnlock()
	if n != 1 {
		t.Fatalf("the hub serves %d watch connections, want the device's only", n)
	}
}
