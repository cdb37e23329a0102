package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// MemNet is an in-memory network of sync endpoints for tests: listeners
// and dials by address, with faults a test controls: partitions (one-way
// too), cutting every connection, a byte budget after which connections
// break, and a delay per write. Connections are net.Pipe pairs.
type MemNet struct {
	mu        sync.Mutex
	listeners map[string]*memListener
	blocked   map[[2]string]bool // {from, to}: from's bytes do not reach to
	conns     map[*faultConn]struct{}
	delay     time.Duration
	cutAfter  int // bytes per connection before it breaks (0: never)
	dials     int
}

// NewMemNet returns an empty network.
func NewMemNet() *MemNet {
	return &MemNet{listeners: map[string]*memListener{}, blocked: map[[2]string]bool{}, conns: map[*faultConn]struct{}{}}
}

type memListener struct {
	n      *MemNet
	addr   string
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// Listen opens a listener at addr.
func (n *MemNet) Listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.listeners[addr]; ok {
		return nil, fmt.Errorf("memnet: %s in use", addr)
	}
	l := &memListener{n: n, addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.n.mu.Lock()
		delete(l.n.listeners, l.addr)
		l.n.mu.Unlock()
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr(l.addr) }

// Dialer returns a dial function for the node at address from.
func (n *MemNet) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		n.mu.Lock()
		l := n.listeners[addr]
		blocked := n.blocked[[2]string{from, addr}]
		n.dials++
		n.mu.Unlock()
		if l == nil || blocked {
			return nil, fmt.Errorf("memnet: dial %s from %s: connection refused", addr, from)
		}
		a, b := net.Pipe()
		ca := n.wrap(a, from, addr)
		cb := n.wrap(b, addr, from)
		select {
		case l.ch <- cb:
			return ca, nil
		case <-l.closed:
			a.Close()
			b.Close()
			return nil, fmt.Errorf("memnet: dial %s: listener closed", addr)
		case <-ctx.Done():
			a.Close()
			b.Close()
			return nil, ctx.Err()
		}
	}
}

func (n *MemNet) wrap(c net.Conn, from, to string) *faultConn {
	fc := &faultConn{Conn: c, n: n, from: from, to: to}
	n.mu.Lock()
	n.conns[fc] = struct{}{}
	n.mu.Unlock()
	return fc
}

// Partition blocks traffic both ways between a and b (new dials fail;
// bytes on open connections are dropped, which breaks them).
func (n *MemNet) Partition(a, b string) {
	n.OneWay(a, b)
	n.OneWay(b, a)
}

// OneWay blocks traffic from a to b only.
func (n *MemNet) OneWay(from, to string) {
	n.mu.Lock()
	n.blocked[[2]string{from, to}] = true
	n.mu.Unlock()
}

// Heal removes every partition.
func (n *MemNet) Heal() {
	n.mu.Lock()
	n.blocked = map[[2]string]bool{}
	n.mu.Unlock()
}

// CutAll closes every open connection.
func (n *MemNet) CutAll() {
	n.mu.Lock()
	cs := make([]*faultConn, 0, len(n.conns))
	for c := range n.conns {
		cs = append(cs, c)
	}
	n.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// SetDelay delays every write by d.
func (n *MemNet) SetDelay(d time.Duration) {
	n.mu.Lock()
	n.delay = d
	n.mu.Unlock()
}

// SetCutAfter breaks each new connection after it has carried k bytes in
// one direction (0: never).
func (n *MemNet) SetCutAfter(k int) {
	n.mu.Lock()
	n.cutAfter = k
	n.mu.Unlock()
}

// Dials returns how many dials were attempted.
func (n *MemNet) Dials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials
}

type faultConn struct {
	net.Conn
	n        *MemNet
	from, to string
	written  int
	once     sync.Once
}

var errCutConn = errors.New("memnet: connection cut")

func (c *faultConn) Write(p []byte) (int, error) {
	c.n.mu.Lock()
	blocked := c.n.blocked[[2]string{c.from, c.to}]
	delay, cut := c.n.delay, c.n.cutAfter
	c.n.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if blocked {
		return len(p), nil // dropped on the floor
	}
	if cut > 0 && c.written+len(p) > cut {
		c.Close()
		return 0, errCutConn
	}
	c.written += len(p)
	return c.Conn.Write(p)
}

func (c *faultConn) Close() error {
	c.once.Do(func() {
		c.n.mu.Lock()
		delete(c.n.conns, c)
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}
