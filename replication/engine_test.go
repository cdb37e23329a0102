package replication

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

type engNode struct {
	name  string
	addr  string
	st    *store.Store
	clock *hlc.Clock
	eng   *Engine
}

func startEngine(t *testing.T, net *MemNet, name, role string, hubs []string, tweak func(*Config)) *engNode {
	t.Helper()
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n := &engNode{name: name, addr: name + ":7401", st: st, clock: hlc.NewClock(nil, hlc.DefaultMaxOffset)}
	scope := FullScope()
	cfg := Config{
		Local:        Local{Node: st.NodeID(), Cluster: "c", Role: role, Scope: scope, Clock: n.clock, Store: st},
		Dial:         net.Dialer(n.addr),
		Hubs:         hubs,
		IdleTimeout:  2 * time.Second,
		PullInterval: time.Hour, // tests trigger syncs themselves unless they say otherwise
		PushDelay:    5 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n.eng = NewEngine(cfg)
	l, err := net.Listen(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { n.eng.Serve(l); done <- struct{}{} }()
	go func() { n.eng.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		n.eng.Close()
		<-done
		<-done
		st.Close()
	})
	return n
}

func (n *engNode) put(t *testing.T, table, id, field string, v any) *crdt.Write {
	t.Helper()
	w, err := n.st.Write(n.clock, table, id, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(v)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	n.eng.Notify(w)
	return w
}

func (n *engNode) value(table, id, field string) string {
	rec, err := n.st.Get(table, id)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	v, ok := rec.Get(field)
	if !ok {
		return "<none>"
	}
	return v.String()
}

// waitFor polls cond (the engine works on its own goroutines).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnginePushAndPull(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, nil)
	a := startEngine(t, net, "a", "device", []string{hub.addr}, nil)
	b := startEngine(t, net, "b", "device", []string{hub.addr}, nil)
	a.put(t, "wo", "1", "start", "08:00")
	waitFor(t, "the push to reach the hub", func() bool { return hub.value("wo", "1", "start") == `"08:00"` })
	sum := b.eng.SyncNow(context.Background(), nil)
	if sum.Succeeded != 1 || len(sum.Failed) > 0 {
		t.Fatalf("sync now: %+v", sum)
	}
	if got := b.value("wo", "1", "start"); got != `"08:00"` {
		t.Fatalf("b sees %s", got)
	}
	ps := b.eng.Partners()
	if len(ps) != 1 || ps[0].LastSuccess.IsZero() || ps[0].Node != hub.st.NodeID() {
		t.Fatalf("partner status %+v", ps)
	}
}

func TestEngineOffline(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, nil)
	a := startEngine(t, net, "a", "device", []string{hub.addr}, nil)
	a.eng.SetOnline(false)
	dials := net.Dials()
	a.put(t, "t", "x", "v", 1)
	sum := a.eng.SyncNow(context.Background(), nil)
	if sum.Succeeded != 0 || len(sum.Failed) == 0 {
		t.Fatalf("offline sync now: %+v", sum)
	}
	// Barrier: Run takes a push signal only at the top of its loop, so
	// once it has taken a second one, it has handled the put's push
	// (and, offline, not dialed).
	waitFor(t, "the put's push taken", func() bool { return len(a.eng.push) == 0 })
	a.eng.signal(a.eng.push)
	waitFor(t, "the run loop past the put's push", func() bool { return len(a.eng.push) == 0 })
	if net.Dials() != dials {
		t.Fatal("an offline node dialed")
	}
	if got := hub.value("t", "x", "v"); got != "<store: not found>" && !strings.Contains(got, "not found") {
		t.Fatalf("hub got %s from an offline node", got)
	}
	// Incoming sessions are refused while offline.
	hub.put(t, "t", "y", "v", 2)
	if _, err := hub.eng.SyncWith(context.Background(), a.addr); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("a session to an offline node: %v, want refused as offline", err)
	}
	if got := a.value("t", "y", "v"); got == "2" {
		t.Fatal("an offline node took a write in a session")
	}
	// Back online: the queued write goes out at once.
	a.eng.SetOnline(true)
	waitFor(t, "the queued write to reach the hub", func() bool { return hub.value("t", "x", "v") == "1" })
}

func TestEnginePartitionAndBackoff(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, nil)
	a := startEngine(t, net, "a", "device", []string{hub.addr}, func(c *Config) { c.MaxBackoff = 200 * time.Millisecond })
	net.OneWay(a.addr, hub.addr)
	a.put(t, "t", "x", "v", 1)
	sum := a.eng.SyncNow(context.Background(), nil)
	if len(sum.Failed) != 1 {
		t.Fatalf("sync across a partition: %+v", sum)
	}
	ps := a.eng.Partners()[0]
	if ps.Failures == 0 || ps.NextTry.IsZero() || ps.LastError == "" {
		t.Fatalf("no backoff recorded: %+v", ps)
	}
	net.Heal()
	// The engine retries by itself once the backoff expires.
	waitFor(t, "the retry after healing", func() bool { return hub.value("t", "x", "v") == "1" })
}

func TestEngineBusyRefusal(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, func(c *Config) { c.MaxSessions = 1; c.SlotWait = 100 * time.Millisecond })
	a := startEngine(t, net, "a", "device", []string{hub.addr}, nil)
	// Occupy the hub's only session slot with a session that says
	// nothing after its Hello.
	c, err := net.Dialer("x")(context.Background(), hub.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 99, Role: "device", Scope: FullScope()}}); err != nil {
		t.Fatal(err)
	}
	if m, _, err := ReadMsg(c); err != nil || m.Welcome == nil || m.Welcome.Refused != "" {
		t.Fatalf("the occupying session: %+v %v", m, err)
	}
	sum := a.eng.SyncNow(context.Background(), nil)
	if len(sum.Failed) != 1 || !strings.Contains(sum.Failed[0], "busy") {
		t.Fatalf("want a busy refusal, got %+v", sum)
	}
	ps := a.eng.Partners()[0]
	if time.Until(ps.NextTry) <= 0 {
		t.Fatalf("no retry delay after a busy refusal: %+v", ps)
	}
	c.Close()
	waitFor(t, "a sync once the hub is free", func() bool {
		return len(a.eng.SyncNow(context.Background(), nil).Failed) == 0
	})
}

// TestEngineWaitsForSlot: with every slot taken, an incoming session
// waits for one (SlotWait) instead of being refused at once: a slot freed
// 200 ms later serves it.
func TestEngineWaitsForSlot(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, func(c *Config) { c.MaxSessions = 1; c.MaxSessionsPerHost = 2; c.SlotWait = 3 * time.Second })
	a := startEngine(t, net, "a", "device", []string{hub.addr}, nil)
	c, err := net.Dialer("x")(context.Background(), hub.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Barrier: the occupying session is welcomed, so it holds the slot.
	if _, err := WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 99, Role: "device", Scope: FullScope()}}); err != nil {
		t.Fatal(err)
	}
	if m, _, err := ReadMsg(c); err != nil || m.Welcome == nil || m.Welcome.Refused != "" {
		t.Fatalf("the occupying session: %+v %v", m, err)
	}
	go func() { time.Sleep(200 * time.Millisecond); c.Close() }()
	if sum := a.eng.SyncNow(context.Background(), nil); len(sum.Failed) != 0 {
		t.Fatalf("a session refused while a slot was about to free: %+v", sum)
	}
}

func TestEngineCutConnections(t *testing.T) {
	net := NewMemNet()
	hub := startEngine(t, net, "hub", "hub", nil, nil)
	a := startEngine(t, net, "a", "device", []string{hub.addr}, func(c *Config) { c.Local.ChunkBytes = 4096 })
	for i := 0; i < 500; i++ {
		if _, err := a.st.Write(a.clock, "t", fmt.Sprint(i), []crdt.FieldValue{{Name: "v", Value: crdt.MustValue(strings.Repeat("z", 100))}}, false); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection breaks after 20 KB: the catch-up needs several
	// sessions, and each resumes where the last stopped.
	net.SetCutAfter(20_000)
	var sessions int
	for sessions = 1; sessions < 100; sessions++ {
		sum := a.eng.SyncNow(context.Background(), nil)
		if len(sum.Failed) == 0 {
			break
		}
	}
	held := hub.st.Holdings()[a.st.NodeID()]
	if held.Contig != 500 {
		t.Fatalf("hub holds %v of a's writes after %d sessions", held, sessions)
	}
	t.Logf("caught up in %d cut sessions", sessions)
	if sessions < 2 {
		t.Fatal("the cut never happened")
	}
	if err := hub.st.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWhileConnectionsArrive: Close waits for the sessions it cut
// while the listener is still open and connections keep arriving (the
// propagation benchmark hit "WaitGroup is reused before previous Wait has
// returned" there): none starts once Close has begun.
func TestCloseWhileConnectionsArrive(t *testing.T) {
	for range 20 {
		st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		e := NewEngine(Config{Local: Local{Node: st.NodeID(), Cluster: "c", Role: "hub", Scope: FullScope(), Clock: hlc.NewClock(nil, hlc.DefaultMaxOffset), Store: st}})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan struct{})
		go func() { e.Serve(l); close(served) }()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
						c.Close()
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		e.Close() // the listener still accepting
		l.Close()
		close(stop)
		wg.Wait()
		<-served
		st.Close()
	}
}
