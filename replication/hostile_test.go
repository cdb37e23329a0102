package replication

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// The hostile-peer suite: a hub on real loopback TCP, and peers that break
// the rules. Each case must be refused or contained, with nothing applied
// and nothing lost, while the hub keeps serving a well-behaved device.

type tcpNode struct {
	st    *store.Store
	clock *hlc.Clock
	eng   *Engine
	addr  string
}

func startTCPNode(t *testing.T, role string, hubs []string, tweak func(*Config)) *tcpNode {
	t.Helper()
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n := &tcpNode{st: st, clock: hlc.NewClock(nil, hlc.DefaultMaxOffset)}
	cfg := Config{
		Local:        Local{Node: st.NodeID(), Cluster: "c", Role: role, Scope: FullScope(), Clock: n.clock, Store: st},
		Hubs:         hubs,
		IdleTimeout:  time.Second,
		PullInterval: time.Hour,
		PushDelay:    5 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n.eng = NewEngine(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = l.Addr().String()
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

func (n *tcpNode) put(t *testing.T, table, id, field string, v any) *crdt.Write {
	t.Helper()
	w, err := n.st.Write(n.clock, table, id, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(v)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (n *tcpNode) has(table, id string) bool {
	_, err := n.st.Get(table, id)
	return err == nil
}

// healthy checks that a well-behaved device still syncs with the hub.
func healthy(t *testing.T, hub *tcpNode, what string) {
	t.Helper()
	dev := startTCPNode(t, "device", []string{hub.addr}, func(c *Config) { c.IdleTimeout = 10 * time.Second })
	id := fmt.Sprintf("ok-%d", time.Now().UnixNano())
	dev.put(t, "jobs", id, "v", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if sum := dev.eng.SyncNow(ctx, nil); sum.Succeeded != 1 {
		t.Fatalf("%s: a well-behaved device cannot sync: %v", what, sum.Failed)
	}
	if !hub.has("jobs", id) {
		t.Fatalf("%s: the hub lacks the well-behaved device's write", what)
	}
}

// rawPeer is a hostile peer speaking the protocol by hand.
type rawPeer struct {
	t    *testing.T
	c    net.Conn
	node hlc.NodeID
	hub  hlc.NodeID
}

func dialRaw(t *testing.T, addr string, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hello sends a Hello and reads the hub's Welcome and Have.
func hello(t *testing.T, addr string, node hlc.NodeID, cluster string) (*rawPeer, *Welcome) {
	t.Helper()
	c := dialRaw(t, addr, "")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: cluster, Node: uint64(node), Role: "device", Scope: FullScope(), PhysMs: time.Now().UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
	m, _, err := ReadMsg(c)
	if err != nil || m.Welcome == nil {
		t.Fatalf("welcome: %v %v", m.Type(), err)
	}
	p := &rawPeer{t: t, c: c, node: node, hub: hlc.NodeID(m.Welcome.Node)}
	w := m.Welcome
	if w.Refused == "" {
		if m, _, err = ReadMsg(c); err != nil || m.Have == nil {
			t.Fatalf("have: %v %v", m.Type(), err)
		}
		if _, err := WriteMsg(c, Msg{Have: &Have{}}); err != nil {
			t.Fatal(err)
		}
	}
	return p, w
}

// chunk sends writes as chunk no and returns the hub's answer: an Ack, or
// the error reading it (the hub closed the connection).
func (p *rawPeer) chunk(no uint64, ws ...*crdt.Write) (Msg, error) {
	body, err := encodeChunkWrites(ws, p.node, p.hub)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := WriteMsg(p.c, Msg{Chunk: &Chunk{No: no, Body: body}}); err != nil {
		return Msg{}, err
	}
	for {
		m, _, err := ReadMsg(p.c)
		if err != nil || m.Ack != nil || m.Error != nil {
			return m, err
		}
	}
}

func forged(origin hlc.NodeID, seq uint64, table, id string) *crdt.Write {
	return &crdt.Write{Origin: origin, Seq: seq, TS: hlc.Timestamp(uint64(time.Now().UnixMilli()) << 16),
		Table: table, ID: id, Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("evil")}}}
}

func TestHostileWrongCluster(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, nil)
	_, w := hello(t, hub.addr, 0x99, "other-cluster")
	if !strings.Contains(w.Refused, "cluster") {
		t.Fatalf("a peer of another cluster was welcomed: %+v", w)
	}
	healthy(t, hub, "after a wrong-cluster peer")
}

func TestHostileOwnOrigin(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, nil)
	hub.put(t, "jobs", "j1", "v", "real")
	p, _ := hello(t, hub.addr, 0x99, "c")
	// A write in the hub's own name, one past its last.
	m, err := p.chunk(1, forged(p.hub, 2, "jobs", "j1"))
	if err == nil && m.Error == nil {
		t.Fatalf("a write claiming the hub's own origin was acknowledged: %v", m.Type())
	}
	if v, _ := mustGet(t, hub.st, "jobs", "j1").Get("v"); v.String() != `"real"` {
		t.Fatalf("hub value %s", v)
	}
	if got := hub.st.HeldOf(hub.st.NodeID()).Max(); got != 1 {
		t.Fatalf("the hub holds its own origin up to %d, want 1", got)
	}
	// Its own next write still gets sequence 2 and applies.
	if w := hub.put(t, "jobs", "j1", "v", "next"); w.Seq != 2 {
		t.Fatalf("next own seq %d", w.Seq)
	}
	// Empties claiming the hub's origin are refused too.
	p2, _ := hello(t, hub.addr, 0x98, "c")
	WriteMsg(p2.c, Msg{Chunk: &Chunk{No: 1, Body: nil, Empties: []OriginHeld{{Origin: uint64(p2.hub), Contig: 1000}}}})
	if m, _, err := ReadMsg(p2.c); err == nil && m.Ack != nil {
		t.Fatal("empties claiming the hub's own origin were acknowledged")
	}
	if got := hub.st.HeldOf(hub.st.NodeID()).Max(); got != 2 {
		t.Fatalf("after forged empties the hub holds its own origin up to %d, want 2", got)
	}
	healthy(t, hub, "after own-origin forgeries")
}

func mustGet(t *testing.T, st *store.Store, table, id string) *crdt.Record {
	t.Helper()
	r, err := st.Get(table, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A replayed chunk (the same frame again) applies nothing twice: its
// writes are duplicates.
func TestHostileReplayedChunk(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, nil)
	p, _ := hello(t, hub.addr, 0x77, "c")
	w1 := forged(0x77, 1, "jobs", "r1")
	if m, err := p.chunk(1, w1); err != nil || m.Ack == nil {
		t.Fatalf("first chunk: %v %v", m.Type(), err)
	}
	before, _ := hub.st.Get("jobs", "r1")
	beforeBytes := fmt.Sprint(before)
	m, err := p.chunk(1, w1) // replayed frame
	if err == nil && m.Ack != nil {
		// Accepted as a duplicate: the state must not change.
		after, _ := hub.st.Get("jobs", "r1")
		if fmt.Sprint(after) != beforeBytes {
			t.Fatal("a replayed chunk changed the record")
		}
	}
	// A replay on a new connection is a duplicate too.
	p2, _ := hello(t, hub.addr, 0x77, "c")
	if m, err := p2.chunk(1, w1); err == nil && m.Ack != nil {
		after, _ := hub.st.Get("jobs", "r1")
		if fmt.Sprint(after) != beforeBytes {
			t.Fatal("a replayed session changed the record")
		}
	}
	if got := hub.st.HeldOf(0x77).Max(); got != 1 {
		t.Fatalf("hub holds origin 77 up to %d", got)
	}
	healthy(t, hub, "after replays")
}

// Frames over the limit close the connection before anything is read
// into memory; nothing is applied.
func TestHostileOversizeFrames(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, nil)
	for _, size := range []uint32{MaxFrameBytes + 1, 1 << 31, 0xffffffff} {
		p, _ := hello(t, hub.addr, 0x55, "c")
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], size)
		p.c.Write(hdr[:])
		p.c.Write(make([]byte, 1024))
		p.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			_, _, err := ReadMsg(p.c)
			if err != nil {
				if isTimeout(err) {
					t.Fatalf("frame of %d bytes: the hub kept the connection open", size)
				}
				break
			}
		}
	}
	// A message reassembled from fragments over MaxMessageBytes is refused
	// too (frames of the maximum size, "more" set, forever).
	p, _ := hello(t, hub.addr, 0x56, "c")
	frame := make([]byte, 4+MaxFrameBytes)
	binary.BigEndian.PutUint32(frame, MaxFrameBytes)
	frame[4], frame[5] = byte(msgFragment), 1
	var sentFrags atomic.Int64
	go func() {
		p.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < MaxMessageBytes/MaxFrameBytes+4; i++ {
			if _, err := p.c.Write(frame); err != nil {
				return
			}
			sentFrags.Add(1)
		}
	}()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ReadMsg(p.c); err != nil {
			if isTimeout(err) {
				t.Fatal("endless fragments: the hub kept the connection open")
			}
			break
		}
	}
	if hub.st.HeldOf(0x55).Max() != 0 || hub.st.HeldOf(0x56).Max() != 0 {
		t.Fatal("something was applied from oversize frames")
	}
	healthy(t, hub, "after oversize frames")
}

// A flood of connections that never speak, from one host, leaves room
// for others, and each is dropped after the handshake timeout.
func TestHostileConnectionFlood(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, func(c *Config) {
		c.MaxSessions = 8
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	var conns []net.Conn
	for range 40 {
		conns = append(conns, dialRaw(t, hub.addr, "127.0.0.2"))
	}
	// The flood holds every share one host may take (7 of 8) before the
	// check, so the check runs during the flood, not before it.
	waitFor(t, "the flood to hold one host's share", func() bool {
		hub.eng.mu.Lock()
		defer hub.eng.mu.Unlock()
		return hub.eng.perHost["127.0.0.2"] == hub.eng.cfg.MaxSessionsPerHost
	})
	healthy(t, hub, "during a flood from another host")
	// The flood's connections are closed by the hub (refused as busy, or
	// dropped after the handshake timeout), a slot's worth at a time: the
	// last ones within a few handshake timeouts, given room for a slow
	// machine (the race detector on two shared cores). Each read returns
	// as soon as the hub closes its connection.
	closed := 0
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		buf := make([]byte, 1<<16)
		for {
			if _, err := c.Read(buf); err != nil {
				if !isTimeout(err) {
					closed++
				}
				break
			}
		}
	}
	if closed != len(conns) {
		t.Fatalf("%d of %d silent connections still open 20 s after the flood (handshake timeout 500 ms)", len(conns)-closed, len(conns))
	}
	hub.eng.mu.Lock()
	left := len(hub.eng.perHost)
	hub.eng.mu.Unlock()
	if left != 0 {
		t.Fatalf("per-host session counts not released: %d hosts", left)
	}
	healthy(t, hub, "after a flood")
}

// A peer that never reads: the hub's writes time out and the session
// ends; others are served meanwhile.
func TestHostileSlowReader(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, func(c *Config) { c.IdleTimeout = 2 * time.Second })
	big := strings.Repeat("x", 60<<10)
	// ~1 MB: whether the hub blocks writing (the peer's small receive
	// buffer is full) or waits for an Ack that never comes, the session
	// must end within the idle timeout.
	for i := range 16 {
		hub.put(t, "blobs", fmt.Sprint(i), "v", big)
	}
	c := dialRaw(t, hub.addr, "127.0.0.3")
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 0x33, Role: "device", Scope: FullScope()}})
	WriteMsg(c, Msg{Have: &Have{}})
	// Never read. The hub's session must end within its idle timeout.
	start := time.Now()
	waitFor(t, "the non-reading peer's session to run", func() bool {
		hub.eng.mu.Lock()
		defer hub.eng.mu.Unlock()
		return len(hub.eng.inflight) > 0
	})
	healthy(t, hub, "while a peer does not read")
	for {
		hub.eng.mu.Lock()
		n := len(hub.eng.inflight)
		hub.eng.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the session with a peer that does not read is still running after %v", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A peer that claims another node's id is refused by Authenticate (TLS
// binds the id to the certificate; here a stand-in binds it to the
// connection's source address).
func TestHostileClaimsAnotherNode(t *testing.T) {
	hub := startTCPNode(t, "hub", nil, func(c *Config) {
		c.Authenticate = func(conn net.Conn, p Peer) error {
			if remoteHost(conn) == "127.0.0.4" && p.Node != 0x44 {
				return errors.New("this connection is node 44")
			}
			return nil
		}
	})
	c := dialRaw(t, hub.addr, "127.0.0.4")
	c.SetDeadline(time.Now().Add(3 * time.Second))
	WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 0x45, Role: "device", Scope: FullScope()}})
	m, _, err := ReadMsg(c)
	if err != nil || m.Welcome == nil || !strings.Contains(m.Welcome.Refused, "not authenticated") {
		t.Fatalf("a peer claiming another node id: %v %+v", err, m.Welcome)
	}
	healthy(t, hub, "after an impostor")
}
