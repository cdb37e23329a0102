package replication

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sessionLog collects what OnSession is told.
type sessionLog struct {
	mu  sync.Mutex
	got []SessionInfo
}

func (l *sessionLog) add(in SessionInfo) { l.mu.Lock(); l.got = append(l.got, in); l.mu.Unlock() }

func (l *sessionLog) all() []SessionInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SessionInfo(nil), l.got...)
}

// TestOnSession: every session's end is reported on both sides, served and
// dialed, with the peer, its version, the writes each way and the result;
// a session refused before its handshake (the listener is offline) is
// reported as refused, with no peer.
func TestOnSession(t *testing.T) {
	net := NewMemNet()
	var hubLog, devLog sessionLog
	hub := startEngine(t, net, "hub", "hub", nil, func(c *Config) { c.OnSession = hubLog.add; c.Local.Version = "hub-1.0" })
	dev := startEngine(t, net, "dev", "device", nil, func(c *Config) { c.OnSession = devLog.add; c.Local.Version = "dev-2.0" })
	dev.put(t, "jobs", "j1", "title", "a")
	dev.put(t, "jobs", "j2", "title", "b")
	hub.put(t, "jobs", "h1", "title", "c")
	if _, err := dev.eng.SyncWith(context.Background(), hub.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hub to report its served session", func() bool { return len(hubLog.all()) == 1 })
	d, h := devLog.all(), hubLog.all()
	if len(d) != 1 || !d[0].Dialed || d[0].Err != nil || d[0].Addr != hub.addr || d[0].Peer.Node != hub.st.NodeID() || d[0].Peer.Version != "hub-1.0" ||
		d[0].Stats.WritesSent != 2 || d[0].Stats.WritesApplied != 1 || d[0].Duration <= 0 {
		t.Errorf("the device's report: %+v", d)
	}
	if h[0].Dialed || h[0].Err != nil || h[0].Peer.Node != dev.st.NodeID() || h[0].Peer.Role != "device" || h[0].Peer.Version != "dev-2.0" ||
		h[0].Stats.WritesApplied != 2 || h[0].Stats.WritesSent != 1 || h[0].Addr == "" {
		t.Errorf("the hub's report: %+v", h[0])
	}
	hub.eng.SetOnline(false)
	if _, err := dev.eng.SyncWith(context.Background(), hub.addr); err == nil {
		t.Fatal("synced with an offline hub")
	}
	waitFor(t, "the hub to report the refusal", func() bool { return len(hubLog.all()) == 2 })
	var re *RefusedError
	if r := hubLog.all()[1]; !errors.As(r.Err, &re) || r.Peer.Node != 0 || r.Dialed {
		t.Errorf("the hub's report of a refusal: %+v", r)
	}
	if r := devLog.all()[1]; !errors.As(r.Err, &re) || !r.Dialed {
		t.Errorf("the device's report of a refusal: %+v", r)
	}
}

// TestCloseWaitsForDialedSessions: Close waits for the sessions this
// engine dialed, and everything after them (OnSession, the collector),
// as it does for the sessions it serves, so a store closed after Close
// is never read by a session still ending (a dialed handshake used to
// read the horizon of a closed store and panic).
func TestCloseWaitsForDialedSessions(t *testing.T) {
	mn := NewMemNet()
	l, err := mn.Listen("silent:7401") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	var reported atomic.Bool
	dev := startEngine(t, mn, "dev", "device", nil, func(c *Config) {
		c.OnSession = func(SessionInfo) { time.Sleep(100 * time.Millisecond); reported.Store(true) }
	})
	done := make(chan struct{})
	go func() { dev.eng.SyncWith(context.Background(), "silent:7401"); close(done) }()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the session was not dialed")
	}
	waitFor(t, "the session to be in flight", func() bool {
		dev.eng.mu.Lock()
		defer dev.eng.mu.Unlock()
		return len(dev.eng.inflight) == 1
	})
	dev.eng.Close()
	if !reported.Load() {
		t.Fatal("Close returned while a dialed session was still ending (OnSession not yet told)")
	}
	<-done
}
