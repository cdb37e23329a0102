package gossip

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// This file holds test support: an in-memory network and a fault-injecting
// transport wrapper. They are exported so that other packages' tests (sync,
// the daemon's end-to-end tests) can build clusters in one process.

// memQueueLen is the depth of a MemTransport's packet and stream queues.
// A packet sent to a full queue is dropped, as UDP would.
const memQueueLen = 1024

// MemNetwork is an in-memory network of MemTransports, safe for concurrent
// use. Unlike memberlist.MockNetwork, it never blocks a sender: a packet to
// a full or shut-down transport is dropped, a stream to one is refused, so a
// node that shuts down cannot wedge the others.
type MemNetwork struct {
	mu       sync.Mutex
	byAddr   map[string]*MemTransport
	nextPort int
}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{byAddr: make(map[string]*MemTransport), nextPort: 10000}
}

// NewTransport returns a transport attached to n with a fresh address
// 127.0.0.1:port. Addresses are never reused.
func (n *MemNetwork) NewTransport() *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextPort++
	t := &MemTransport{
		net:      n,
		addr:     memAddr("127.0.0.1:" + strconv.Itoa(n.nextPort)),
		port:     n.nextPort,
		packetCh: make(chan *memberlist.Packet, memQueueLen),
		streamCh: make(chan net.Conn, memQueueLen),
		done:     make(chan struct{}),
	}
	n.byAddr[string(t.addr)] = t
	return t
}

func (n *MemNetwork) lookup(addr string) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byAddr[addr]
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// MemTransport is one node's memberlist.NodeAwareTransport on a MemNetwork.
// Packets are delivered by address (Address.Addr), as on a real network.
type MemTransport struct {
	net      *MemNetwork
	addr     memAddr
	port     int
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*MemTransport)(nil)

// Addr returns the transport's address, host:port.
func (t *MemTransport) Addr() string { return string(t.addr) }

// FinalAdvertiseAddr implements memberlist.Transport: it always returns the
// transport's own address.
func (t *MemTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), t.port, nil
}

// WriteTo implements memberlist.Transport.
func (t *MemTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. A packet to an
// unknown, shut-down or congested address is silently dropped.
func (t *MemTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.closed() {
		return now, errors.New("gossip: mem transport shut down")
	}
	dest := t.net.lookup(a.Addr)
	if dest == nil || dest.closed() {
		return now, nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr, Timestamp: now}
	select {
	case dest.packetCh <- p:
	default:
	}
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *MemTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *MemTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport with a
// net.Pipe; it fails at once if nothing listens at the address.
func (t *MemTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.closed() {
		return nil, errors.New("gossip: mem transport shut down")
	}
	dest := t.net.lookup(a.Addr)
	if dest == nil || dest.closed() {
		return nil, fmt.Errorf("gossip: dial %s: connection refused", a.Addr)
	}
	local, remote := net.Pipe()
	select {
	case dest.streamCh <- remote:
		return local, nil
	case <-dest.done:
	default:
	}
	_ = local.Close()
	_ = remote.Close()
	return nil, fmt.Errorf("gossip: dial %s: connection refused", a.Addr)
}

// StreamCh implements memberlist.Transport.
func (t *MemTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport. Later sends to this transport
// are dropped or refused; it is idempotent.
func (t *MemTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.mu.Lock()
		delete(t.net.byAddr, string(t.addr))
		t.net.mu.Unlock()
		for {
			select {
			case c := <-t.streamCh:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (t *MemTransport) closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// FaultNet injects faults into the traffic of the FaultTransports it wraps:
// packet loss, delay, and partitions, one-way or full. Its decisions come
// from one *rand.Rand seeded by the test (print the seed to replay a run;
// goroutine scheduling still varies which packet meets which draw).
//
// Faults apply on the sending side, so every node of a test cluster must be
// wrapped by the same FaultNet. Nodes are named by their memberlist names.
type FaultNet struct {
	mu      sync.Mutex
	rng     *rand.Rand
	drop    float64
	delay   time.Duration
	jitter  time.Duration
	blocked map[[2]string]bool // {from, to}
	byAddr  map[string]string  // address -> node name
	stats   map[string]*FaultStats
}

// FaultStats counts what one FaultTransport sent and suppressed.
type FaultStats struct {
	// PacketsSent counts packets passed to the inner transport.
	PacketsSent atomic.Int64
	// PacketsDropped counts packets dropped by loss or partition.
	PacketsDropped atomic.Int64
	// Dials counts stream dials passed to the inner transport.
	Dials atomic.Int64
	// DialsRefused counts dials refused by a partition.
	DialsRefused atomic.Int64
}

// NewFaultNet returns a FaultNet without faults drawing from rng.
func NewFaultNet(rng *rand.Rand) *FaultNet {
	return &FaultNet{
		rng:     rng,
		blocked: make(map[[2]string]bool),
		byAddr:  make(map[string]string),
		stats:   make(map[string]*FaultStats),
	}
}

// Wrap returns a transport for the node called name whose outgoing traffic
// goes through f. addr is the node's address as peers dial it (used to name
// the destination of address-only sends such as joins).
func (f *FaultNet) Wrap(name, addr string, inner memberlist.NodeAwareTransport) *FaultTransport {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byAddr[addr] = name
	st := &FaultStats{}
	f.stats[name] = st
	return &FaultTransport{NodeAwareTransport: inner, f: f, name: name, stats: st}
}

// SetDropRate makes every packet be lost with probability p (0 to 1).
// Streams are not affected (they model TCP).
func (f *FaultNet) SetDropRate(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = p
}

// SetDelay delays every packet by d plus a uniform random [0, jitter), and
// every dial by d.
func (f *FaultNet) SetDelay(d, jitter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay, f.jitter = d, jitter
}

// Block stops traffic from node from to node to (one way). Packets from
// from to to are dropped; streams between them are refused in both
// directions, since a stream needs both ways.
func (f *FaultNet) Block(from, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked[[2]string{from, to}] = true
}

// Partition blocks all traffic, both ways, between nodes of different
// groups. Nodes in no group are not affected.
func (f *FaultNet) Partition(groups ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					f.blocked[[2]string{a, b}] = true
				}
			}
		}
	}
}

// Isolate blocks all traffic between node name and every other node.
func (f *FaultNet) Isolate(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, other := range f.byAddr {
		if other != name {
			f.blocked[[2]string{name, other}] = true
			f.blocked[[2]string{other, name}] = true
		}
	}
}

// Heal removes all blocks; loss and delay stay as set.
func (f *FaultNet) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocked)
}

// Stats returns the counters of the node called name, or nil.
func (f *FaultNet) Stats(name string) *FaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats[name]
}

func (f *FaultNet) dest(a memberlist.Address) string {
	if a.Name != "" {
		return a.Name
	}
	return f.byAddr[a.Addr]
}

// decidePacket reports whether a packet is dropped and its delay.
func (f *FaultNet) decidePacket(from string, a memberlist.Address) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked[[2]string{from, f.dest(a)}] {
		return true, 0
	}
	if f.drop > 0 && f.rng.Float64() < f.drop {
		return true, 0
	}
	d := f.delay
	if f.jitter > 0 {
		d += time.Duration(f.rng.Int63n(int64(f.jitter)))
	}
	return false, d
}

func (f *FaultNet) decideDial(from string, a memberlist.Address) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	to := f.dest(a)
	return f.blocked[[2]string{from, to}] || f.blocked[[2]string{to, from}], f.delay
}

// FaultTransport wraps a memberlist.NodeAwareTransport with the faults of a
// FaultNet. Create it with FaultNet.Wrap.
type FaultTransport struct {
	memberlist.NodeAwareTransport
	f     *FaultNet
	name  string
	stats *FaultStats
}

// Stats returns this transport's counters.
func (t *FaultTransport) Stats() *FaultStats { return t.stats }

// WriteTo implements memberlist.Transport.
func (t *FaultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *FaultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	drop, delay := t.f.decidePacket(t.name, a)
	if drop {
		t.stats.PacketsDropped.Add(1)
		return time.Now(), nil
	}
	t.stats.PacketsSent.Add(1)
	if delay <= 0 {
		return t.NodeAwareTransport.WriteToAddress(b, a)
	}
	b = append([]byte(nil), b...)
	time.AfterFunc(delay, func() { _, _ = t.NodeAwareTransport.WriteToAddress(b, a) })
	return time.Now(), nil
}

// DialTimeout implements memberlist.Transport.
func (t *FaultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *FaultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	refuse, delay := t.f.decideDial(t.name, a)
	if refuse {
		t.stats.DialsRefused.Add(1)
		return nil, fmt.Errorf("gossip: dial %s: partitioned", a.Addr)
	}
	t.stats.Dials.Add(1)
	if delay > 0 {
		time.Sleep(min(delay, timeout))
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
}
