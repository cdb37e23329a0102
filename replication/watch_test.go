package replication

import (
	"context"
	"fmt"
	gonet "net"
	"strings"
	"testing"
	"time"
)

// TestWatchBringsWritesAtOnce: devices that dial a hub with Watch get
// each other's writes through the hub without waiting for the pull
// interval (an hour here); the watch connections hold none of the hub's
// session slots; a device that drops its watch (offline) catches up once
// back; the hub serves one watch per node and at most MaxWatchers.
func TestWatchBringsWritesAtOnce(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, func(c *Config) { c.MaxWatchers = 3; c.MaxSessions = 1 })
	watch := func(c *Config) { c.Watch = true }
	a := startEngine(t, net, "a", "device", []string{hub.addr}, watch)
	b := startEngine(t, net, "b", "device", []string{hub.addr}, watch)
	waitFor(t, "both watch connections", func() bool { return hub.eng.Watchers() == 2 })

	for i := 1; i <= 5; i++ {
		start := time.Now()
		a.put(t, "wo", "1", "n", i)
		want := fmt.Sprint(i)
		waitFor(t, "a's write on b", func() bool { return b.value("wo", "1", "n") == want })
		t.Logf("write %d: on b after %v", i, time.Since(start))
		b.put(t, "wo", "2", "n", i)
		waitFor(t, "b's write on a", func() bool { return a.value("wo", "2", "n") == want })
	}

	// A second watch of a node replaces its first.
	c1, _ := dialWatchConn(t, net, hub.addr, 77)
	defer c1.Close()
	waitFor(t, "the third watcher", func() bool { return hub.eng.Watchers() == 3 })
	c2, _ := dialWatchConn(t, net, hub.addr, 77)
	defer c2.Close()
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ReadMsg(c1); err == nil {
		t.Fatal("the replaced watch connection is still open")
	}
	if n := hub.eng.Watchers(); n != 3 {
		t.Fatalf("%d watchers after a node's second watch, want 3", n)
	}
	// A fourth watcher is refused: the bound.
	if reason := dialWatch(t, net, hub.addr); !strings.Contains(reason, "busy: 3 watch connections") {
		t.Fatalf("a fourth watcher: refusal %q", reason)
	}
	c2.Close()
	waitFor(t, "the node's watch to close", func() bool { return hub.eng.Watchers() == 2 })

	// A session still runs (the watchers hold no session slot; MaxSessions 1).
	c := startEngine(t, net, "c", "device", []string{hub.addr}, nil)
	if sum := c.eng.SyncNow(context.Background(), nil); sum.Succeeded != 1 {
		t.Fatalf("a session beside two watchers: %+v", sum)
	}

	// Offline: the watch is cut; back online, b catches up at once.
	b.eng.SetOnline(false)
	waitFor(t, "b's watch to close", func() bool { return hub.eng.Watchers() == 1 })
	a.put(t, "wo", "3", "n", 7)
	waitFor(t, "the write on the hub", func() bool { return hub.value("wo", "3", "n") == "7" })
	b.eng.SetOnline(true)
	waitFor(t, "b to catch up", func() bool { return b.value("wo", "3", "n") == "7" })
}

// TestWatchRefusedByOldOrUnwillingListener: a listener with no watch
// slots refuses the watch (the dialer keeps using sessions), and a News
// inside a session is a protocol violation.
func TestWatchRefusedByOldOrUnwillingListener(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, nil) // MaxWatchers 0
	a := startEngine(t, net, "a", "device", []string{hub.addr}, func(c *Config) { c.Watch = true })
	if reason := dialWatch(t, net, hub.addr); !strings.Contains(reason, "serves no watch connections") {
		t.Fatalf("a watch with MaxWatchers 0: refusal %q", reason)
	}
	a.put(t, "wo", "1", "n", 1)
	waitFor(t, "the push", func() bool { return hub.value("wo", "1", "n") == "1" })
	s := NewSession(&hub.eng.cfg.Local, false)
	s.Start()
	if _, err := s.Handle(Msg{News: &News{}}); err == nil {
		t.Fatal("news during a handshake accepted")
	}
}

// dialWatch asks addr for a watch connection by hand and returns the
// refusal's reason ("" if accepted).
func dialWatch(t *testing.T, net *MemNet, addr string) string {
	t.Helper()
	c, reason := dialWatchConn(t, net, addr, 99)
	c.Close()
	return reason
}

// dialWatchConn asks addr for a watch connection as node and returns it
// with the refusal's reason ("" if accepted).
func dialWatchConn(t *testing.T, net *MemNet, addr string, node uint64) (gonet.Conn, string) {
	t.Helper()
	c, err := net.Dialer(fmt.Sprintf("x%d", node))(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: node, Role: "device", Scope: FullScope(), Watch: true}}); err != nil {
		t.Fatal(err)
	}
	m, _, err := ReadMsg(c)
	if err != nil || m.Welcome == nil {
		t.Fatalf("watch handshake: %+v %v", m, err)
	}
	if m.Welcome.Refused == "" && !m.Welcome.Watch {
		t.Fatal("a session's welcome to a watch hello")
	}
	return c, m.Welcome.Refused
}
