package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/store"
)

// Partner is a node this one syncs with: a hub's configured address, or a
// member found through gossip.
type Partner struct {
	Addr string     // sync address
	Node hlc.NodeID // 0 when not known yet (a configured hub)
	Role string
}

// Config configures an Engine. Zero values take the defaults named.
type Config struct {
	Local Local
	// Dial opens a stream to a sync address (default: TCP).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Hubs are hub sync addresses a device dials.
	Hubs []string
	// Members returns the partners gossip currently knows (may be nil).
	Members func() []Partner
	// MaxSessions bounds concurrent sessions, in and out (default 16).
	// Extra incoming sessions are refused with a retry delay.
	MaxSessions int
	// PullInterval is how often every partner is synced (default 60s).
	PullInterval time.Duration
	// PushDelay batches local writes before pushing them (default 20ms).
	PushDelay time.Duration
	// IdleTimeout bounds every read and write of a session (default 30s).
	IdleTimeout time.Duration
	// MaxBackoff caps the wait after failed syncs with a partner
	// (default 60s; the wait starts at 500ms and doubles).
	MaxBackoff time.Duration
	// Broadcast, if set, pushes a fresh local write to gossip peers.
	Broadcast func(key string, payload []byte) error
	// MaxBroadcast is the largest payload Broadcast takes.
	MaxBroadcast int
	// Collector, on a hub, decides tombstone collection; the engine feeds
	// it every session's Have and steps it after every session.
	Collector *Collector
	// HandshakeTimeout bounds the wait for an incoming peer's Hello
	// (default 5s): a connection that does not speak frees its slot.
	HandshakeTimeout time.Duration
	// MaxSessionsPerHost bounds the incoming sessions from one remote IP
	// (default MaxSessions less an eighth, at least 1), so that a flood of
	// connections from one host leaves room for the others.
	MaxSessionsPerHost int
	// MaxHelloBytes bounds an incoming session's first message, the
	// peer's Hello (default DefaultMaxHelloBytes): one frame, no
	// fragments, until the handshake is accepted.
	MaxHelloBytes int
	// MaxBufferedBytes bounds the bytes of messages being reassembled
	// from fragments across all incoming sessions (default
	// DefaultMaxBufferedBytes); a session that would exceed it ends.
	MaxBufferedBytes int64
	// ReservedSessions of the MaxSessions slots are kept for known peers
	// (authenticated, or seen in a successful session): unknown ones hold
	// at most the others (default MaxSessions/4; slots.go).
	ReservedSessions int
	// ReserveHelloTimeout bounds the wait for the Hello of a connection
	// taken into the reserve (default 1s).
	ReserveHelloTimeout time.Duration
	// MinSessionRate (bytes/s, default DefaultMinSessionRate; negative:
	// off) and SessionRateWindow (default 30s): an incoming session that
	// moves less over a window is cut. MaxSessionTime (default 15 min;
	// negative: off) cuts one that lasts longer. A long-lived link that
	// idles must not be served as a session.
	MinSessionRate    int
	SessionRateWindow time.Duration
	MaxSessionTime    time.Duration
	// SlotWait is how long an incoming session waits for one of the
	// MaxSessions slots before it is refused as busy (default 2s).
	SlotWait time.Duration
	// Authenticate, if set, checks each session's peer (the node id and
	// role claimed in the handshake) against its connection, e.g. its TLS
	// certificate; an error refuses the session.
	Authenticate func(c net.Conn, p Peer) error
	// OnSession, if set, is told of every session when it ends, served or
	// dialed, whatever its result (the agent's peer table and metrics).
	// It runs on the session's goroutine: it must not block.
	OnSession func(SessionInfo)
	// PushHints makes gossip pushes hints (a TLS cluster: gossip is not
	// authenticated per node): HandlePushFrom applies nothing, and a push
	// of a write this node lacks triggers a session with the node that
	// pushed it (if it is a partner), which brings the write over an
	// authenticated stream, judged like any other.
	PushHints bool
	// Watch keeps a watch connection with each of Hubs (watch.go), so
	// that their writes arrive within moments instead of at the next pull.
	Watch bool
	// MaxWatchers bounds the watch connections served at once (0: none
	// is served); they hold no session slot.
	MaxWatchers int
	// Heartbeat is the period of a watch connection's heartbeats
	// (default DefaultHeartbeat); one silent for three is dropped.
	Heartbeat time.Duration
}

// PartnerStatus is what the engine knows of one partner.
type PartnerStatus struct {
	Addr        string
	Node        hlc.NodeID
	Role        string
	LastSuccess time.Time
	LastAttempt time.Time
	LastError   string
	Failures    int
	NextTry     time.Time
	SkewMs      int64
	Last        Stats
	// APIAddr and GossipAddr are what the partner advertised in its
	// Welcome at the last session this node dialed ("" if none).
	APIAddr, GossipAddr string
	// Arbiter: the partner arbitrates; Decided is how far it had decided
	// this node's writes (every write up to it held there, its decision
	// carried out) at the start of the last successful session this node
	// dialed, which brought those decisions here.
	Arbiter bool
	Decided uint64
}

// SessionInfo is what OnSession is told of one session.
type SessionInfo struct {
	Dialed bool   // this node dialed; false: it served the session
	Addr   string // dialed: the partner's sync address; served: the connection's remote address
	// Peer is the peer as the handshake established it (Node 0 when the
	// session ended before: refused busy or offline, unreachable, ...).
	Peer     Peer
	Stats    Stats
	Start    time.Time
	Duration time.Duration
	Err      error // nil: the session finished; a *RefusedError: refused at the handshake
}

func (e *Engine) report(dialed bool, addr string, start time.Time, s *Session, err error) {
	if e.cfg.OnSession == nil {
		return
	}
	if s == nil && err == nil {
		err = errors.New("replication: connection closed before the session started") // offline or closing meanwhile
	}
	info := SessionInfo{Dialed: dialed, Addr: addr, Start: start, Duration: time.Since(start), Err: err}
	if s != nil {
		info.Peer, info.Stats = s.Peer(), s.Snapshot()
	}
	e.cfg.OnSession(info)
}

// Summary reports a sync round.
type Summary struct {
	Partners  int
	Succeeded int
	Failed    []string // "addr: reason"
	Stats     Stats    // totals
}

// Engine runs sync sessions: it serves incoming ones, pushes local writes,
// pulls on an interval, and syncs on demand. Safe for concurrent use.
type Engine struct {
	cfg Config
	log hclog.Logger

	sem     chan struct{}
	buffers *byteBudget // MaxBufferedBytes
	slots   slotState   // guarded by mu (slots.go)

	mu       sync.Mutex
	online   bool
	partners map[string]*partnerState
	closed   bool
	push     chan struct{}
	wake     chan struct{}
	hint     chan struct{}
	hinted   map[hlc.NodeID]bool // partners that pushed writes this node lacks (PushHints)
	wg       sync.WaitGroup
	inflight map[net.Conn]struct{}
	perHost  map[string]int // incoming sessions by remote IP
	hostWait map[string]int // incoming sessions waiting for their host's share

	acceptErrs netguard.Throttle // Serve's ERROR lines on temporary errors

	watchMu  sync.Mutex
	watchers map[*watcher]struct{} // watch connections served (watch.go)
}

type partnerState struct {
	PartnerStatus
	busy sync.Mutex // one session per partner at a time
}

// NewEngineChecked is NewEngine refusing a store that lacks a capability
// the engine's own scope needs (Capabilities.Need): the error names what
// is missing, where NewEngine only logs it and every session is refused.
func NewEngineChecked(cfg Config) (*Engine, error) {
	if err := cfg.Local.Capabilities().Need(cfg.Local.Scope, Scope{}); err != nil {
		return nil, err
	}
	return NewEngine(cfg), nil
}

// NewEngine returns an engine; call Run to start its triggers and Serve to
// accept sessions. A store lacking a capability the scope needs is logged
// at ERROR (NewEngineChecked refuses it).
func NewEngine(cfg Config) *Engine {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 16
	}
	if cfg.PullInterval <= 0 {
		cfg.PullInterval = 60 * time.Second
	}
	if cfg.ReservedSessions <= 0 {
		cfg.ReservedSessions = max(1, cfg.MaxSessions/4)
	}
	cfg.ReservedSessions = min(cfg.ReservedSessions, cfg.MaxSessions-1)
	if cfg.ReserveHelloTimeout <= 0 {
		cfg.ReserveHelloTimeout = DefaultReserveHelloTimeout
	}
	if cfg.MinSessionRate == 0 {
		cfg.MinSessionRate = DefaultMinSessionRate
	}
	if cfg.SessionRateWindow <= 0 {
		cfg.SessionRateWindow = DefaultSessionRateWindow
	}
	if cfg.MaxSessionTime == 0 {
		cfg.MaxSessionTime = DefaultMaxSessionTime
	}
	if cfg.MaxHelloBytes <= 0 {
		cfg.MaxHelloBytes = DefaultMaxHelloBytes
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.SlotWait <= 0 {
		cfg.SlotWait = 2 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.MaxSessionsPerHost <= 0 {
		cfg.MaxSessionsPerHost = max(1, cfg.MaxSessions-max(1, cfg.MaxSessions/8))
	}
	if cfg.PushDelay <= 0 {
		cfg.PushDelay = 20 * time.Millisecond
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 60 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if cfg.Local.Log == nil {
		cfg.Local.Log = hclog.NewNullLogger()
	}
	if c := cfg.Collector; c != nil {
		prev := cfg.Local.OnPeerHave
		cfg.Local.OnPeerHave = func(p Peer, have map[hlc.NodeID]store.Held) {
			c.Observe(p, have)
			if prev != nil {
				prev(p, have)
			}
		}
	}
	if cfg.Local.Counters == nil {
		cfg.Local.Counters = &Counters{}
	}
	if cfg.Local.voids == nil {
		log := cfg.Local.Log
		cfg.Local.voids = newVoidBook(cfg.Local.Capabilities().Voids, func(err error) {
			log.Error("the list of false empty claims to pass on was not kept", "error", err)
		})
	}
	cfg.Local.state()                                                               // the scope state exists before sessions share it
	if err := cfg.Local.Capabilities().Need(cfg.Local.Scope, Scope{}); err != nil { // found once
		cfg.Local.Log.Error("every session will be refused", "error", err)
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Local.Log.Named("sync"),
		sem:      make(chan struct{}, cfg.MaxSessions),
		buffers:  newByteBudget(cfg.MaxBufferedBytes),
		online:   true,
		partners: map[string]*partnerState{},
		push:     make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		hint:     make(chan struct{}, 1),
		hinted:   map[hlc.NodeID]bool{},
		inflight: map[net.Conn]struct{}{},
		watchers: map[*watcher]struct{}{},
	}
	// Remote writes applied (sessions, gossip pushes) are news for the
	// watchers.
	applied := e.cfg.Local.OnApplied
	e.cfg.Local.OnApplied = func(peer hlc.NodeID, writes []*crdt.Write, res *store.Result) {
		e.announce(writes, res)
		if applied != nil {
			applied(peer, writes, res)
		}
	}
	return e
}

// Buffered returns the bytes incoming sessions are reassembling now
// (bounded by MaxBufferedBytes).
func (e *Engine) Buffered() int64 { return e.buffers.Buffered() }

// Counters returns what the engine's defences counted.
func (e *Engine) Counters() *Counters { return e.cfg.Local.Counters }

// Scope returns the scope in force (a hub may have assigned a new one).
func (e *Engine) Scope() Scope { return e.cfg.Local.scope() }

// SetScope puts a scope in force (see Local.SetScope).
func (e *Engine) SetScope(sc Scope) { e.cfg.Local.SetScope(sc) }

// ForceReconcile makes the next session with a hub reconcile every
// filtered table of the scope (see Local.ForceReconcile).
func (e *Engine) ForceReconcile() { e.cfg.Local.ForceReconcile() }

// Online reports whether the engine may use the network.
func (e *Engine) Online() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.online
}

// SetOnline puts the node offline (no session starts or is accepted, and
// running ones are cut; writes queue locally) or back online (a sync round
// starts at once).
func (e *Engine) SetOnline(on bool) {
	e.mu.Lock()
	was := e.online
	e.online = on
	var cut []net.Conn
	if !on {
		for c := range e.inflight {
			cut = append(cut, c)
		}
	}
	e.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
	if on && !was {
		e.mu.Lock()
		for _, p := range e.partners {
			p.NextTry = time.Time{}
			p.Failures = 0
		}
		e.mu.Unlock()
		e.signal(e.wake)
	}
}

// Notify tells the engine a local write happened: it is pushed soon.
func (e *Engine) Notify(w *crdt.Write) {
	if w != nil {
		e.announce([]*crdt.Write{w}, nil)
	}
	if w != nil && e.cfg.Broadcast != nil && e.Online() {
		if b, err := crdt.AppendWrite(nil, w); err == nil && len(b) <= e.cfg.MaxBroadcast {
			key := fmt.Sprintf("%s/%s/%s", w.Origin, w.Table, w.ID)
			if err := e.cfg.Broadcast(key, b); err != nil {
				e.log.Debug("broadcast failed", "error", err)
			}
		}
	}
	e.signal(e.push)
}

func (e *Engine) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// HandlePush applies a write pushed through gossip. A write whose
// predecessors are missing here is dropped: anti-entropy brings it.
func (e *Engine) HandlePush(payload []byte) { e.HandlePushFrom(0, payload) }

// HandlePushFrom is HandlePush of a push gossip says node from sent (0:
// unknown). With PushHints, the write is not applied: a write this node
// lacks makes it sync with from soon (pushes are coalesced, like local
// writes, by PushDelay).
func (e *Engine) HandlePushFrom(from hlc.NodeID, payload []byte) {
	if !e.Online() {
		return
	}
	w, err := crdt.DecodeWrite(payload, true)
	if err != nil || !store.ValidTable(w.Table) || !store.ValidID(w.ID) {
		e.log.Debug("malformed gossip push dropped", "error", err)
		return
	}
	if e.cfg.PushHints {
		if from == 0 || from == e.cfg.Local.Node || w.Origin == e.cfg.Local.Node || e.holds(w.Origin, w.Seq) {
			return
		}
		e.mu.Lock()
		e.hinted[from] = true
		e.mu.Unlock()
		e.signal(e.hint)
		return
	}
	sc := e.cfg.Local.scope()
	if w.Origin == e.cfg.Local.Node || !sc.Selects(w.Table, w.ID, nil, nil) && !sc.NeedsRecord(w.Table) {
		return
	}
	if sc.NeedsRecord(w.Table) && !e.cfg.Local.visible(w.Table, w.ID) {
		return // not a record this replica shows: anti-entropy decides
	}
	if _, held := e.cfg.Local.causalReady([]*crdt.Write{w}); len(held) > 0 {
		return // the record is entering this replica's scope: anti-entropy fetches it whole
	}
	res, _, err := e.cfg.Local.applyRemote(Peer{Node: from}, []*crdt.Write{w}, nil, nil, nil)
	if err != nil {
		e.log.Warn("applying a gossip push failed", "error", err)
		return
	}
	if e.cfg.Local.OnApplied != nil && res.Applied > 0 {
		e.cfg.Local.OnApplied(w.Origin, []*crdt.Write{w}, res)
	}
}

// holds reports whether the store holds origin's write seq.
func (e *Engine) holds(origin hlc.NodeID, seq uint64) bool {
	return e.cfg.Local.heldOf(origin).Contains(seq)
}

// syncHinted syncs with the partners that pushed writes this node lacks
// (PushHints); a node that pushed but is no partner of this one (a device
// pushing to a hub, which does not dial devices) is skipped: it pushes
// its writes to its own partners by sessions anyway.
func (e *Engine) syncHinted(ctx context.Context) {
	e.mu.Lock()
	hinted := e.hinted
	e.hinted = map[hlc.NodeID]bool{}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range e.partnerList() {
		ps := e.state(p)
		e.mu.Lock()
		node := ps.Node // a configured hub's, once a session told it
		e.mu.Unlock()
		if p.Node != 0 {
			node = p.Node
		}
		if !hinted[node] {
			continue
		}
		wg.Add(1)
		go func(p Partner) {
			defer wg.Done()
			e.syncWith(ctx, p, ps, nil)
		}(p)
	}
	wg.Wait()
}

// partnerList returns the current partners: configured hubs and gossip
// members (a hub syncs with hubs only; devices with everyone).
func (e *Engine) partnerList() []Partner {
	seen := map[string]bool{}
	var out []Partner
	add := func(p Partner) {
		if p.Addr == "" || seen[p.Addr] || p.Node == e.cfg.Local.Node {
			return
		}
		if e.cfg.Local.Role == "hub" && p.Role == "device" {
			return
		}
		seen[p.Addr] = true
		out = append(out, p)
	}
	for _, h := range e.cfg.Hubs {
		add(Partner{Addr: h, Role: "hub"})
	}
	if e.cfg.Members != nil {
		for _, m := range e.cfg.Members() {
			add(m)
		}
	}
	return out
}

func (e *Engine) state(p Partner) *partnerState {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := e.partners[p.Addr]
	if ps == nil {
		ps = &partnerState{PartnerStatus: PartnerStatus{Addr: p.Addr, Node: p.Node, Role: p.Role}}
		e.partners[p.Addr] = ps
	}
	return ps
}

// SyncNow syncs with every partner at once (ignoring backoff) and returns
// when the round ends. progress, if set, is called with the round's
// running totals.
func (e *Engine) SyncNow(ctx context.Context, progress func(Stats)) Summary {
	return e.round(ctx, true, progress)
}

// SyncWith runs one session with the node at addr now, whatever its
// backoff (tests, and syncing with one peer on demand).
func (e *Engine) SyncWith(ctx context.Context, addr string) (Stats, error) {
	if !e.Online() {
		return Stats{}, errors.New("offline: nothing crosses the network")
	}
	p := Partner{Addr: addr}
	return e.syncWith(ctx, p, e.state(p), nil)
}

func (e *Engine) round(ctx context.Context, force bool, progress func(Stats)) Summary {
	var sum Summary
	if !e.Online() {
		sum.Failed = append(sum.Failed, "offline: nothing crosses the network")
		return sum
	}
	partners := e.partnerList()
	sum.Partners = len(partners)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var totals Stats
	for _, p := range partners {
		ps := e.state(p)
		e.mu.Lock()
		skip := !force && (ps.Failures == 0 || time.Now().Before(ps.NextTry))
		e.mu.Unlock()
		if skip {
			sum.Partners--
			continue
		}
		wg.Add(1)
		go func(p Partner, ps *partnerState) {
			defer wg.Done()
			st, err := e.syncWith(ctx, p, ps, func(s Stats) {
				if progress != nil {
					mu.Lock()
					t := totals
					addStats(&t, s)
					mu.Unlock()
					progress(t)
				}
			})
			mu.Lock()
			defer mu.Unlock()
			addStats(&totals, st)
			if err != nil {
				sum.Failed = append(sum.Failed, p.Addr+": "+err.Error())
			} else {
				sum.Succeeded++
			}
		}(p, ps)
	}
	wg.Wait()
	sum.Stats = totals
	sort.Strings(sum.Failed)
	return sum
}

func addStats(t *Stats, s Stats) {
	t.WritesSent += s.WritesSent
	t.WritesApplied += s.WritesApplied
	t.Duplicates += s.Duplicates
	t.Parked += s.Parked
	t.Deferred += s.Deferred
	t.Refused += s.Refused
	t.EmptiesSent += s.EmptiesSent
	t.EmptiesReceived += s.EmptiesReceived
	t.ChunksSent += s.ChunksSent
	t.ChunksReceived += s.ChunksReceived
	t.RecordsFetched += s.RecordsFetched
	t.BytesSent += s.BytesSent
	t.BytesReceived += s.BytesReceived
}

// syncWith runs one session with p.
func (e *Engine) syncWith(ctx context.Context, p Partner, ps *partnerState, progress func(Stats)) (Stats, error) {
	ps.busy.Lock()
	defer ps.busy.Unlock()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
	defer func() { <-e.sem }()
	start := time.Now()
	e.mu.Lock()
	ps.LastAttempt = start
	e.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.IdleTimeout)
	c, err := e.cfg.Dial(dctx, p.Addr)
	cancel()
	var st Stats
	var peer Peer
	if err == nil {
		if !e.track(c) {
			c.Close()
			err = errors.New("offline")
		} else {
			s := NewSession(&e.cfg.Local, true)
			e.authenticate(s, c)
			// A dialed hub brings the horizon if TLS proved its role, or,
			// without TLS, if its address is a configured hub's (not one
			// gossip announced, which anyone on the network can).
			configured := p.Node == 0 && slices.Contains(e.cfg.Hubs, p.Addr)
			s.TrustHorizon = func(Peer) bool { return e.cfg.Authenticate != nil || configured }
			// Untracked when the session's aftermath (record, OnSession,
			// the collector) is over too: Close waits for it.
			defer e.untrack(c)
			err = RunConn(ctx, c, s, ConnOptions{IdleTimeout: e.cfg.IdleTimeout, Progress: progress})
			st, peer = s.Snapshot(), s.Peer()
		}
	}
	e.record(p, ps, st, peer, err)
	if e.cfg.OnSession != nil {
		e.cfg.OnSession(SessionInfo{Dialed: true, Addr: p.Addr, Peer: peer, Stats: st, Start: start, Duration: time.Since(start), Err: err})
	}
	if err == nil {
		e.remember(peer.Node)
		e.stepCollector()
	}
	return st, err
}

// record notes a session's outcome in the partner's status and backoff.
func (e *Engine) record(p Partner, ps *partnerState, st Stats, peer Peer, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps.Last = st
	if peer.Node != 0 {
		ps.Node, ps.Role, ps.SkewMs = peer.Node, peer.Role, peer.SkewMs
		ps.APIAddr, ps.GossipAddr = peer.APIAddr, peer.GossipAddr
	}
	if err != nil {
		ps.Failures++
		ps.LastError = err.Error()
		back := 500 * time.Millisecond << min(ps.Failures-1, 16)
		var re *RefusedError
		if errors.As(err, &re) && re.RetryAfter > 0 {
			back = time.Duration(re.RetryAfter) * time.Millisecond
		}
		ps.NextTry = time.Now().Add(min(back, e.cfg.MaxBackoff))
		e.log.Debug("sync failed", "partner", p.Addr, "error", err, "retry_in", min(back, e.cfg.MaxBackoff).String())
		return
	}
	if peer.Node != 0 {
		ps.Arbiter, ps.Decided = peer.Arbiter, peer.Decided
	}
	ps.Failures = 0
	ps.LastError = ""
	ps.LastSuccess = time.Now()
	ps.NextTry = time.Time{}
}

// Partners returns the status of every partner seen, sorted by address.
func (e *Engine) Partners() []PartnerStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]PartnerStatus, 0, len(e.partners))
	for _, p := range e.partners {
		out = append(out, p.PartnerStatus)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// Run drives the triggers until ctx is done: pushes after local writes
// (batched by PushDelay), and a pull of every partner each PullInterval,
// retrying failed partners as their backoff allows.
func (e *Engine) Run(ctx context.Context) {
	if e.cfg.Watch {
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, h := range e.cfg.Hubs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.watchHub(ctx, h)
			}()
		}
	}
	ticker := time.NewTicker(e.cfg.PullInterval)
	defer ticker.Stop()
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-e.push:
			t := time.NewTimer(e.cfg.PushDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			force = true
		case <-e.wake:
			force = true
		case <-e.hint:
			t := time.NewTimer(e.cfg.PushDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if e.Online() {
				e.syncHinted(ctx)
			}
			continue
		case <-ticker.C:
			force = true
		case <-retry.C:
			if !e.due() {
				continue
			}
		}
		if e.Online() {
			e.round(ctx, force, nil)
		}
	}
}

// due reports whether a failed partner's backoff has expired.
func (e *Engine) due() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for _, p := range e.partners {
		if p.Failures > 0 && !now.Before(p.NextTry) {
			return true
		}
	}
	return false
}

// Close cuts every session in flight, served, dialed or watching, and
// waits for them to end (the caller closes the listener first); a round
// that Run or SyncNow starts afterwards dials nothing. The store may be
// closed once Close returns.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	for c := range e.inflight {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
