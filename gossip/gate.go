package gossip

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrOffline is returned for traffic attempted while a node is offline.
var ErrOffline = errors.New("gossip: offline")

// GateTransport wraps a memberlist.NodeAwareTransport with an on/off switch.
// While it is offline nothing crosses it: outgoing packets are dropped,
// outgoing dials fail with ErrOffline, incoming packets are dropped, incoming
// streams are closed, and streams open when it went offline are closed.
//
// It owns the inner transport: Shutdown shuts the inner one down.
type GateTransport struct {
	inner    memberlist.NodeAwareTransport
	offline  atomic.Bool
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stopping chan struct{} // closed at the start of Shutdown
	done     chan struct{} // closed once the inner transport is down
	wg       sync.WaitGroup
	once     sync.Once

	mu    sync.Mutex
	conns map[*gateConn]struct{}

	// counters
	outDropped, inDropped, dialsRefused atomic.Int64
}

var _ memberlist.NodeAwareTransport = (*GateTransport)(nil)

// NewGateTransport returns an online gate in front of inner.
func NewGateTransport(inner memberlist.NodeAwareTransport) *GateTransport {
	g := &GateTransport{
		inner:    inner,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		conns:    make(map[*gateConn]struct{}),
	}
	g.wg.Add(2)
	go g.forwardPackets()
	go g.forwardStreams()
	return g
}

// SetOnline opens (true) or closes (false) the gate. Closing it also closes
// the streams open through it.
func (g *GateTransport) SetOnline(online bool) {
	g.offline.Store(!online)
	if online {
		return
	}
	g.mu.Lock()
	conns := make([]*gateConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Online reports whether the gate is open.
func (g *GateTransport) Online() bool { return !g.offline.Load() }

// GateStats counts the traffic a GateTransport stopped.
type GateStats struct {
	// OutDropped counts outgoing packets dropped while offline.
	OutDropped int64
	// InDropped counts incoming packets and streams dropped while offline.
	InDropped int64
	// DialsRefused counts outgoing dials refused while offline.
	DialsRefused int64
}

// Stats returns the gate's counters.
func (g *GateTransport) Stats() GateStats {
	return GateStats{g.outDropped.Load(), g.inDropped.Load(), g.dialsRefused.Load()}
}

func (g *GateTransport) forwardPackets() {
	defer g.wg.Done()
	in := g.inner.PacketCh()
	for {
		select {
		case p := <-in:
			if g.offline.Load() {
				g.inDropped.Add(1)
				continue
			}
			select {
			case g.packetCh <- p:
			case <-g.stopping:
				// Keep draining so the inner transport's
				// listeners never block while shutting down.
			}
		case <-g.done:
			return
		}
	}
}

func (g *GateTransport) forwardStreams() {
	defer g.wg.Done()
	in := g.inner.StreamCh()
	for {
		select {
		case c := <-in:
			if g.offline.Load() {
				g.inDropped.Add(1)
				_ = c.Close()
				continue
			}
			gc := g.track(c)
			select {
			case g.streamCh <- gc:
			case <-g.stopping:
				_ = gc.Close()
			}
		case <-g.done:
			return
		}
	}
}

func (g *GateTransport) track(c net.Conn) *gateConn {
	gc := &gateConn{Conn: c, g: g}
	g.mu.Lock()
	g.conns[gc] = struct{}{}
	g.mu.Unlock()
	return gc
}

type gateConn struct {
	net.Conn
	g    *GateTransport
	once sync.Once
}

func (c *gateConn) Close() error {
	c.once.Do(func() {
		c.g.mu.Lock()
		delete(c.g.conns, c)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (g *GateTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return g.inner.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (g *GateTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return g.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport; while offline
// the packet is dropped without an error, as a lost UDP packet would be.
func (g *GateTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if g.offline.Load() {
		g.outDropped.Add(1)
		return time.Now(), nil
	}
	return g.inner.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (g *GateTransport) PacketCh() <-chan *memberlist.Packet { return g.packetCh }

// DialTimeout implements memberlist.Transport.
func (g *GateTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return g.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport; while
// offline it fails with ErrOffline.
func (g *GateTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.offline.Load() {
		g.dialsRefused.Add(1)
		return nil, ErrOffline
	}
	c, err := g.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return g.track(c), nil
}

// StreamCh implements memberlist.Transport.
func (g *GateTransport) StreamCh() <-chan net.Conn { return g.streamCh }

// Shutdown implements memberlist.Transport: it closes the gate's streams,
// shuts the inner transport down and stops the gate's goroutines. It is
// idempotent.
func (g *GateTransport) Shutdown() error {
	var err error
	g.once.Do(func() {
		close(g.stopping)
		g.SetOnline(false)
		err = g.inner.Shutdown()
		close(g.done)
		g.wg.Wait()
	})
	return err
}
