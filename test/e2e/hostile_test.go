package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/replication"
)

// An agent asked to serve sync off loopback without mutual TLS refuses to
// start and says how to fix it.
func TestInsecureSyncRefused(t *testing.T) {
	out, err := exec.Command(binary, "agent", "--data-dir", t.TempDir(), "--api-addr", freeAddr(t), "--sync-addr", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--sync-addr") || !strings.Contains(string(out), "insecure") || !strings.Contains(string(out), "tls") {
		t.Fatalf("sync on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
}

// procMiB reads a field of /proc/PID/status (VmRSS, VmHWM) in MiB.
func procMiB(t *testing.T, pid int, field string) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// heapMiB reads the Go heap a node reports in /metrics.
func (n *node) heapMiB(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_alloc_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	t.Fatal("no go_memstats_heap_alloc_bytes in /metrics")
	return 0
}

// syncTimed has n sync now and returns how long it took; the round must
// succeed.
func (n *node) syncTimed(t *testing.T, what string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	sum, err := n.client().Sync(ctx)
	if err != nil || sum.Succeeded != sum.Partners || len(sum.Failed) > 0 {
		t.Fatalf("%s: sync: %v %+v", what, err, sum)
	}
	return time.Since(start)
}

// The resource attacks on a real hub process: connections that send
// fragments of a huge message before saying hello, and handshakes refused
// for their cluster id carrying distinct filter expressions. The hub's
// memory stays bounded and comes back down, and a device syncs during and
// after each attack.
func TestHostileHubMemory(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	dev := startNode(t, "dev", "--hub", hub.sync, "--gossip-addr", "off")
	ctx := context.Background()
	put := func(id string) {
		if _, err := dev.client().Put(ctx, "jobs", id, map[string]json.RawMessage{"v": json.RawMessage(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	dev.syncTimed(t, "before the attacks")
	pid := hub.cmd.Process.Pid
	base := procMiB(t, pid, "VmRSS")
	baseHeap := hub.heapMiB(t)
	baseG := hub.metric(t, "go_goroutines")

	// 1. 24 connections x 60 MiB of fragments before hello.
	const conns, perConn = 24, 60 << 20
	const fragment = 1<<20 + 64<<10 // replication.MaxFrameBytes
	piece := make([]byte, 4+fragment)
	for i, sh := range []uint{24, 16, 8, 0} { // the frame's big-endian length
		piece[i] = byte(uint32(fragment) >> sh)
	}
	piece[4], piece[5] = 10, 1 // a fragment frame (type 10), more to come
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", hub.sync)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			for sent := 0; sent < perConn; sent += fragment {
				if _, err := c.Write(piece); err != nil {
					return
				}
			}
			c.Read(make([]byte, 1)) // hold it until the hub closes it
		}()
	}
	put("during-fragments")
	took := dev.syncTimed(t, "during the fragments")
	wg.Wait()
	peak := procMiB(t, pid, "VmHWM")
	time.Sleep(time.Second)
	afterRSS, afterHeap := procMiB(t, pid, "VmRSS"), hub.heapMiB(t)
	t.Logf("fragments before hello (%d x %d MiB): hub RSS %.0f MiB before, peak %.0f, %.0f after; Go heap %.1f -> %.1f MiB; the device synced in %v during the attack",
		conns, perConn>>20, base, peak, afterRSS, baseHeap, afterHeap, took.Round(time.Millisecond))
	if peak-base > 128 || afterHeap-baseHeap > 32 {
		t.Errorf("fragments before hello: RSS peak +%.0f MiB, heap +%.1f MiB", peak-base, afterHeap-baseHeap)
	}

	// 2. Refused handshakes with distinct filter expressions.
	const refused = 2000
	start := time.Now()
	for i := 0; i < refused; i++ {
		var f strings.Builder
		fmt.Fprintf(&f, "n == %d", i)
		for j := 0; j < 120; j++ {
			fmt.Fprintf(&f, " || owner == 'user-%d-%d'", i, j)
		}
		c, err := net.Dial("tcp", hub.sync)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		sc := replication.Scope{Tables: []replication.TableScope{{Table: "jobs", Filter: f.String()}}}
		replication.WriteMsg(c, replication.Msg{Hello: &replication.Hello{Proto: replication.ProtocolVersion, Cluster: "not-the-cluster", Node: uint64(0x1000 + i), Role: "device", Scope: sc}})
		replication.ReadMsg(c)
		c.Close()
	}
	flood := time.Since(start)
	put("after-filters")
	took = dev.syncTimed(t, "after the filter flood")
	afterRSS2, afterHeap2 := procMiB(t, pid, "VmRSS"), hub.heapMiB(t)
	t.Logf("%d refused handshakes with distinct filters in %v: hub RSS %.0f -> %.0f MiB, Go heap %.1f -> %.1f MiB; the device synced in %v after",
		refused, flood.Round(time.Millisecond), afterRSS, afterRSS2, afterHeap, afterHeap2, took.Round(time.Millisecond))
	if afterHeap2-afterHeap > 32 {
		t.Errorf("refused handshakes grew the hub's heap by %.1f MiB", afterHeap2-afterHeap)
	}
	// Every attack connection is gone: the goroutines come back down.
	var g float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if g = hub.metric(t, "go_goroutines"); g <= baseG+5 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("hub goroutines %v before the attacks, %v after", baseG, g)
	if g > baseG+5 {
		t.Errorf("the hub runs %v goroutines after the attacks, %v before", g, baseG)
	}
	for _, id := range []string{"before", "during-fragments", "after-filters"} {
		if _, err := hub.client().Get(ctx, "jobs", id); err != nil {
			t.Errorf("the hub lacks the device's write %s: %v", id, err)
		}
	}
}

// metric reads a counter or gauge from a node's /metrics (0 if absent).
func (n *node) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// A stranger (no TLS, sync on loopback) declares a device's future
// sequence numbers empty to a real hub, which is restarted. The hub, a
// full replica, ignores the claim, logs it at ERROR and counts it; the
// device's writes reach the hub and the hub's reach it.
func TestHostileForgedEmptiesHeal(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	dev := startNode(t, "dev", "--hub", hub.sync, "--gossip-addr", "off")
	ctx := context.Background()
	put := func(n *node, id string) {
		t.Helper()
		if _, err := n.client().Put(ctx, "jobs", id, map[string]json.RawMessage{"v": json.RawMessage(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	put(dev, "a")
	put(dev, "b")
	dev.syncTimed(t, "before the attack")
	st, err := dev.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := strconv.ParseUint(st.Node, 16, 64)
	if err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", hub.sync)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	replication.WriteMsg(c, replication.Msg{Hello: &replication.Hello{Proto: replication.ProtocolVersion, Cluster: "replicad", Node: 0x99, Role: "device", Scope: replication.FullScope()}})
	for i := 0; i < 2; i++ { // Welcome, Have
		if m, _, err := replication.ReadMsg(c); err != nil || m.Welcome != nil && m.Welcome.Refused != "" {
			t.Fatalf("the stranger's handshake: %v %+v", err, m.Welcome)
		}
	}
	replication.WriteMsg(c, replication.Msg{Have: &replication.Have{}})
	replication.WriteMsg(c, replication.Msg{Chunk: &replication.Chunk{No: 1, Empties: []replication.OriginHeld{{Origin: origin, Ranges: []uint64{3, 1_000_000}}}}})
	acked := false
	for !acked {
		m, _, err := replication.ReadMsg(c)
		if err != nil || m.Error != nil {
			break
		}
		acked = m.Ack != nil
	}
	c.Close()
	t.Logf("the hub acknowledged the forged empties: %v", acked)
	counted := hub.metric(t, "replicad_sync_origin_contradictions_total") + hub.metric(t, "replicad_sync_empties_refused_total")
	hub.stop() // its log is complete (and read by this goroutine alone)
	if acked && (counted < 1 || !strings.Contains(hub.log.String(), "[ERROR]") || !strings.Contains(hub.log.String(), "forged empty claim")) {
		t.Errorf("the forged claim was not logged at ERROR and counted on the hub (%v)", counted)
	}
	hub.start() // a claim, if taken, would be durable

	put(dev, "c")
	put(dev, "d")
	put(hub, "from-hub")
	took := dev.syncTimed(t, "the device's first session after the attack")
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := hub.client().Get(ctx, "jobs", id); err != nil {
			t.Fatalf("the hub lacks the device's write %s: %v", id, err)
		}
	}
	if _, err := dev.client().Get(ctx, "jobs", "from-hub"); err != nil {
		t.Fatalf("the device lacks the hub's write: %v", err)
	}
	t.Logf("healed in %v", took.Round(time.Millisecond))
}

// A device of another cluster is told why it was refused, by a code, and
// nothing of the hub (its cluster id, node id); the hub logs the details.
func TestRefusalRevealsNothing(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--cluster-id", "acme-secret-7f3a")
	dev := startNode(t, "dev", "--hub", hub.sync, "--gossip-addr", "off", "--cluster-id", "other")
	ctx := context.Background()
	sum, err := dev.client().Sync(ctx)
	if err != nil || sum.Succeeded != 0 || len(sum.Failed) != 1 {
		t.Fatalf("sync with a hub of another cluster: %v %+v", err, sum)
	}
	st, err := hub.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := sum.Failed[0]
	if !strings.Contains(got, replication.RefusedCluster) || strings.Contains(got, "acme-secret") || strings.Contains(got, st.Node) {
		t.Fatalf("the device was told %q; want the code %q and nothing of the hub (node %s)", got, replication.RefusedCluster, st.Node)
	}
	hub.stop() // its log is complete (and read by this goroutine alone)
	if !strings.Contains(hub.log.String(), `cluster \"other\"`) {
		t.Fatalf("the hub did not log the details:\n%s", hub.log.String())
	}
}
