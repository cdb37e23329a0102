package gossip

import (
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Size limits of messages.
const (
	// MaxBroadcastSize is the largest payload Broadcast and SendTo accept
	// on an unencrypted cluster (see Gossip.MaxPayload for the limit of a
	// node).
	//
	// memberlist piggybacks broadcasts on UDP packets of UDPBufferSize
	// (1,400) bytes and never sends one that does not fit: it stays in the
	// queue forever. From 1,400: 4 bytes of compound-message header, 1 of
	// message type, at most 141 of our envelope (kind, origin, a key of up
	// to MaxKeyLen bytes, sequence number) leaves 1,254; 1,200 keeps some
	// room for memberlist's own piggybacked membership messages.
	MaxBroadcastSize = 1200

	// encryptionReserve is what SecretKey takes off MaxBroadcastSize:
	// memberlist's AES-GCM adds 29 bytes (version, nonce, tag), rounded up.
	encryptionReserve = 32
)

// Errors returned by Gossip's methods.
var (
	// ErrTooLarge is returned by Broadcast and SendTo for a payload over
	// MaxPayload, or a key over MaxKeyLen.
	ErrTooLarge = errors.New("gossip: message too large")
	// ErrClosed is returned after Shutdown.
	ErrClosed = errors.New("gossip: shut down")
	// ErrUnknownNode is returned by SendTo for a node that is not alive.
	ErrUnknownNode = errors.New("gossip: unknown node")
)

// State is a member's state as last seen by this node.
//
// memberlist's suspect state is not reported: memberlist v0.7.0 tells no
// delegate when a node becomes suspect, and reading its node list to find out
// races with its own updates. A suspect node shows as StateAlive until it is
// declared dead.
type State uint8

// Member states.
const (
	// StateAlive is a member that answers (or is only suspected).
	StateAlive State = iota + 1
	// StateDead is a member declared dead by failure detection: crashed,
	// offline or partitioned away.
	StateDead
	// StateLeft is a member that left gracefully (Leave) and whose leave
	// notice reached this node; if the notice was lost it is StateDead.
	StateLeft
)

// String returns "alive", "dead" or "left".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is a copy of what this node knows of a cluster member.
type Member struct {
	// Name is the member's node id.
	Name string
	// Addr is the member's gossip address, host:port.
	Addr string
	// Meta is the member's advertised metadata.
	Meta Meta
	// State is the member's state.
	State State
}

// EventKind says what changed about a member.
type EventKind uint8

// Kinds of membership change.
const (
	// EventJoin: a member joined, or came back after being dead.
	EventJoin EventKind = iota + 1
	// EventLeave: a member left or was declared dead (see Member.State).
	EventLeave
	// EventUpdate: a member's meta or address changed.
	EventUpdate
)

// String returns "join", "leave" or "update".
func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventUpdate:
		return "update"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Stats are counters of a node since New.
type Stats struct {
	// MembersAlive counts alive members, this node included.
	MembersAlive int
	// BroadcastsQueued is the number of broadcasts in the queue now
	// (this node's and those it relays).
	BroadcastsQueued int
	// BroadcastsSent counts broadcasts that were gossiped their full
	// number of times and left the queue.
	BroadcastsSent uint64
	// BroadcastsDropped counts broadcasts evicted, oldest first, from a
	// full queue before being fully gossiped.
	BroadcastsDropped uint64
	// BroadcastsSuperseded counts broadcasts replaced in the queue by a
	// newer one with the same key.
	BroadcastsSuperseded uint64
	// Transmissions counts broadcast copies put on the wire.
	Transmissions uint64
	// MessagesReceived counts messages delivered to OnMessage (or that
	// would have been, if it is nil), after removal of duplicates.
	MessagesReceived uint64
	// MessagesDropped counts incoming messages dropped: malformed, or
	// beyond OnMessage's backlog.
	MessagesDropped uint64
	// RefusedJoins counts refusals of nodes of another cluster, of an
	// incompatible protocol version, or with undecodable meta (each alive
	// message or merge refused counts once).
	RefusedJoins uint64
	// Online reports whether the node is online (SetOnline).
	Online bool
}

// Internal bounds.
const (
	maxPendingMessages = 1024
	maxPendingEvents   = 4096
	maxDedupe          = 8192           // (origin, key) pairs remembered
	rememberFor        = 24 * time.Hour // dead members re-joined for this long
	maxRejoinTargets   = 8              // per round
	maxRefusalsLogged  = 4096
)

// Gossip is one node's membership in a replicad cluster. Its methods are
// safe for concurrent use.
type Gossip struct {
	cfg        Config
	log        hclog.Logger
	name       string
	metaBytes  []byte
	digest     []byte
	maxPayload int
	ml         *memberlist.Memberlist
	gate       *GateTransport
	queue      *bqueue
	seq        atomic.Uint64
	msgs       *dispatcher[message]
	events     *dispatcher[memberEvent]

	mu       sync.Mutex
	members  map[string]*memberEntry
	refusals map[string]struct{} // names whose refusal was logged
	leaving  map[string]struct{} // alive members that sent a leave notice
	seen     map[string]uint64   // origin\x00key -> last delivered seq
	seenFIFO []string

	received, msgsDropped, refused atomic.Uint64

	rejoinCh chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	downOnce sync.Once
}

type memberEntry struct {
	m    Member
	seen time.Time // last time alive
}

type message struct {
	from    string
	payload []byte
}

type memberEvent struct {
	m    Member
	kind EventKind
}

// New starts a node: it binds its transport, joins memberlist and starts
// joining cfg.Join in the background (failures are logged, not returned, so
// a device can start offline). Stop it with Shutdown.
func New(cfg Config) (*Gossip, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	metaBytes, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg:        cfg,
		log:        cfg.Logger.Named("gossip"),
		name:       cfg.Name,
		metaBytes:  metaBytes,
		digest:     encodeDigest(cfg.Meta),
		maxPayload: MaxBroadcastSize,
		members:    make(map[string]*memberEntry),
		refusals:   make(map[string]struct{}),
		leaving:    make(map[string]struct{}),
		seen:       make(map[string]uint64),
		rejoinCh:   make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
	if len(cfg.SecretKey) > 0 || cfg.Keyring != nil {
		g.maxPayload -= encryptionReserve
	}
	// Start broadcast sequence numbers at the wall clock so that they keep
	// increasing across restarts: receivers drop a (origin, key) broadcast
	// whose sequence number is not above the last one delivered.
	g.seq.Store(uint64(time.Now().UnixNano()))
	stdlog := cfg.Logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})

	mc := cfg.memberlistConfig()
	// Broadcasts are gossiped at least as often as memberlist's LAN default
	// (4 * ceil(log10(n+1)) copies per node holding one); each receiver
	// relays, which delivers to all of 30 nodes in the large majority of
	// cases (best effort: see Broadcast).
	g.queue = newBQueue(cfg.MaxQueue, max(mc.RetransmitMult, 4), g.aliveCount)

	inner := cfg.Transport
	advIP, advPort := cfg.AdvertiseAddr, cfg.AdvertisePort
	if inner == nil {
		nt, err := newNetTransport(cfg.BindAddr, cfg.BindPort, stdlog)
		if err != nil {
			return nil, err
		}
		inner = nt
		if advIP == "" {
			if ip := net.ParseIP(cfg.BindAddr); ip.IsUnspecified() {
				_ = nt.Shutdown()
				return nil, fmt.Errorf("gossip: bound to %s, which peers cannot dial: set AdvertiseAddr to this node's IP (or BindAddr to a specific IP)", cfg.BindAddr)
			}
			advIP = cfg.BindAddr
		}
		if advPort == 0 {
			advPort = nt.GetAutoBindPort()
		}
	} else if advIP == "" || advPort == 0 {
		ip, port, err := inner.FinalAdvertiseAddr("", 0)
		if err != nil {
			return nil, fmt.Errorf("gossip: transport address: %w", err)
		}
		if ip.IsUnspecified() {
			return nil, fmt.Errorf("gossip: transport advertises %s, which peers cannot dial: set AdvertiseAddr", ip)
		}
		if advIP == "" {
			advIP = ip.String()
		}
		if advPort == 0 {
			advPort = port
		}
	}
	g.gate = NewGateTransport(inner)

	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = advPort
	mc.AdvertiseAddr = advIP
	mc.AdvertisePort = advPort
	mc.Transport = g.gate
	mc.Logger = stdlog
	mc.SecretKey = cfg.SecretKey
	mc.Keyring = cfg.Keyring
	h := &hooks{g}
	mc.Delegate = h
	mc.Events = h
	mc.Alive = h
	mc.Merge = h

	g.msgs = newDispatcher(maxPendingMessages, func(m message) {
		if cfg.OnMessage != nil {
			cfg.OnMessage(m.from, m.payload)
		}
	})
	g.events = newDispatcher(maxPendingEvents, func(e memberEvent) {
		if cfg.OnMemberChange != nil {
			cfg.OnMemberChange(e.m, e.kind)
		}
	})

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = g.gate.Shutdown()
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml = ml
	g.wg.Add(3)
	go func() { defer g.wg.Done(); g.msgs.run(g.stop) }()
	go func() { defer g.wg.Done(); g.events.run(g.stop) }()
	go func() { defer g.wg.Done(); g.rejoinLoop() }()
	g.log.Debug("started", "name", cfg.Name, "addr", net.JoinHostPort(advIP, strconv.Itoa(advPort)),
		"role", cfg.Meta.Role, "cluster", cfg.Meta.ClusterID, "profile", cfg.Profile)
	return g, nil
}

// newNetTransport binds memberlist's UDP/TCP transport, retrying a few
// times when port 0 races with another binder (as memberlist does).
func newNetTransport(bindAddr string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{bindAddr}, BindPort: port, Logger: logger}
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("gossip: bind %s: %w", net.JoinHostPort(bindAddr, strconv.Itoa(port)), err)
}

// aliveCount counts alive members, this node included (at least 1).
func (g *Gossip) aliveCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, e := range g.members {
		if e.m.State == StateAlive {
			n++
		}
	}
	return max(n, 1)
}

// Name returns this node's name.
func (g *Gossip) Name() string { return g.name }

// Addr returns this node's advertised gossip address, host:port, for
// others to put in Config.Join.
func (g *Gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// MaxPayload returns the largest payload Broadcast and SendTo accept on
// this node: MaxBroadcastSize, less 32 bytes with a SecretKey.
func (g *Gossip) MaxPayload() int { return g.maxPayload }

// Members returns copies of the members this node knows, itself included,
// sorted by name. Dead and left members are kept for a while (and re-joined
// when dead) before they are forgotten.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	out := make([]Member, 0, len(g.members))
	for _, e := range g.members {
		out = append(out, e.m)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Broadcast gossips payload to every node of the cluster. It is queued under
// key: a later Broadcast with the same key supersedes it if it has not been
// fully gossiped yet, and receivers never deliver an older payload of a key
// after a newer one. Delivery is best-effort (a node that is partitioned
// away, or whose queue overflows, may miss it; the sync package repairs
// that) and may rarely be duplicated.
//
// The queue holds at most Config.MaxQueue broadcasts, this node's and the
// ones it relays; beyond that the oldest is dropped. While the node is
// offline broadcasts wait in the queue. Broadcast returns ErrTooLarge for a
// payload over MaxPayload or a key over MaxKeyLen, ErrClosed after
// Shutdown. payload is copied.
func (g *Gossip) Broadcast(key string, payload []byte) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(key), MaxKeyLen)
	}
	if len(payload) > g.maxPayload {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), g.maxPayload)
	}
	e := envelope{kind: kindBroadcast, origin: g.name, key: key, seq: g.seq.Add(1), payload: payload}
	g.queue.push(queueName(kindBroadcast, g.name, key), e.encode())
	return nil
}

// SendTo sends payload to the alive member name in one best-effort packet
// (no retry, no acknowledgement), for small direct pokes. It returns
// ErrTooLarge over MaxPayload, ErrUnknownNode if name is not an alive member,
// ErrOffline while offline, ErrClosed after Shutdown. payload is copied.
func (g *Gossip) SendTo(name string, payload []byte) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if len(payload) > g.maxPayload {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), g.maxPayload)
	}
	if !g.gate.Online() {
		return ErrOffline
	}
	g.mu.Lock()
	e, ok := g.members[name]
	var addr string
	if ok && e.m.State == StateAlive {
		addr = e.m.Addr
	}
	g.mu.Unlock()
	if addr == "" {
		return fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	env := envelope{kind: kindDirect, origin: g.name, payload: payload}
	if err := g.ml.SendToAddress(memberlist.Address{Addr: addr, Name: name}, env.encode()); err != nil {
		return fmt.Errorf("gossip: send to %s: %w", name, err)
	}
	return nil
}

// Rejoin re-joins the seeds and the recently seen members that are not
// alive now, in the background. Call it when the node regains network
// access; it is a no-op while offline.
func (g *Gossip) Rejoin() {
	select {
	case g.rejoinCh <- struct{}{}:
	default:
	}
}

// SetOnline puts the node offline (false): from then on nothing crosses the
// network (see GateTransport); broadcasts wait in the queue, and the other
// nodes will declare this one dead, as it will them. Back online (true) it
// re-joins at once.
func (g *Gossip) SetOnline(online bool) {
	g.gate.SetOnline(online)
	g.log.Info("network", "online", online)
	if online {
		g.Rejoin()
	}
}

// Online reports whether the node is online.
func (g *Gossip) Online() bool { return g.gate.Online() }

// Leave tells the cluster that this node leaves, waiting up to timeout for
// the message to be gossiped. Call Shutdown afterwards.
func (g *Gossip) Leave(timeout time.Duration) error {
	if g.closed.Load() {
		return ErrClosed
	}
	// The notice rides the same gossip rounds as memberlist's own leave
	// message; a peer that misses it sees this node as dead instead.
	e := envelope{kind: kindLeave, origin: g.name, seq: g.seq.Add(1)}
	g.queue.push(queueName(kindLeave, g.name, ""), e.encode())
	return g.ml.Leave(timeout)
}

// Shutdown stops the node without telling the others (they will detect
// it as dead; call Leave first for a graceful exit). It stops every
// goroutine of the node, its transport's included; callbacks running then
// are waited for. It is idempotent.
func (g *Gossip) Shutdown() error {
	var err error
	g.downOnce.Do(func() {
		g.closed.Store(true)
		close(g.stop)
		err = g.ml.Shutdown()
		g.wg.Wait()
		g.queue.reset()
	})
	return err
}

// Stats returns the node's counters.
func (g *Gossip) Stats() Stats {
	qs := g.queue.stats()
	return Stats{
		MembersAlive:         g.aliveCount(),
		BroadcastsQueued:     qs.queued,
		BroadcastsSent:       qs.sent,
		BroadcastsDropped:    qs.dropped,
		BroadcastsSuperseded: qs.superseded,
		Transmissions:        qs.transmits,
		MessagesReceived:     g.received.Load(),
		MessagesDropped:      g.msgsDropped.Load() + g.msgs.droppedCount(),
		RefusedJoins:         g.refused.Load(),
		Online:               g.gate.Online(),
	}
}

// rejoinLoop joins the seeds at once, then re-joins every RejoinInterval
// and whenever Rejoin is called.
func (g *Gossip) rejoinLoop() {
	var tick <-chan time.Time
	if g.cfg.RejoinInterval > 0 {
		t := time.NewTicker(g.cfg.RejoinInterval)
		defer t.Stop()
		tick = t.C
	}
	g.rejoin()
	for {
		select {
		case <-g.stop:
			return
		case <-tick:
		case <-g.rejoinCh:
		}
		g.rejoin()
	}
}

// rejoinTargets returns the seeds and the members dead for less than
// rememberFor, except those at the address of an alive member, at most
// maxRejoinTargets of them (seeds first, the members at random).
// It forgets dead and left members older than rememberFor.
func (g *Gossip) rejoinTargets() []string {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	alive := make(map[string]bool)
	var dead []string
	for name, e := range g.members {
		switch {
		case e.m.State == StateAlive:
			alive[e.m.Addr] = true
		case now.Sub(e.seen) > rememberFor:
			delete(g.members, name)
		case e.m.State == StateDead:
			dead = append(dead, e.m.Addr)
		}
	}
	var out []string
	for _, s := range g.cfg.Join {
		if !alive[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	rand.Shuffle(len(dead), func(i, j int) { dead[i], dead[j] = dead[j], dead[i] })
	for _, a := range dead {
		if !alive[a] && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) > maxRejoinTargets {
		out = out[:maxRejoinTargets]
	}
	return out
}

// rejoin joins the rejoin targets, a few at a time.
func (g *Gossip) rejoin() {
	if !g.gate.Online() {
		return
	}
	targets := g.rejoinTargets()
	if len(targets) == 0 {
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var ok atomic.Int32
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if g.closed.Load() {
				return
			}
			if _, err := g.ml.Join([]string{t}); err != nil {
				g.log.Debug("join failed", "addr", t, "error", err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	g.log.Debug("rejoin", "targets", len(targets), "joined", ok.Load())
}
