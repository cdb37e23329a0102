package replication

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Store is what replication needs of a replica's store; *store.Store
// implements it. See the store package for each method's contract. The
// optional parts a store may add are in capabilities.go.
type Store interface {
	NodeID() hlc.NodeID
	Holdings() map[hlc.NodeID]store.Held
	Stream(origin hlc.NodeID, after uint64, fn func(*crdt.Write) error) error
	ApplyRemoteScoped(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]store.SeqRange, hook func(Batch, *store.Result) error) (*store.Result, error)
	GetAny(table, id string) (*crdt.Record, error)
	MergeRecordScoped(clock *hlc.Clock, table, id string, rec *crdt.Record, hook func(Batch, *crdt.Record) error) (bool, error)
	GCHorizon() (crdt.VV, error)
	RaiseGCHorizon(h crdt.VV) (crdt.VV, error)
	Collect(limit int) (int, error)
}

// Batch is the batch of an apply or a merge as the session's hooks see
// it (hide, show, purge, collect records; read hidden marks as the batch
// leaves them); a *store.Batch for a *store.Store.
type Batch = store.ScopeBatch

// Local is what a session knows of its own node.
type Local struct {
	Node    hlc.NodeID
	Cluster string
	Role    string
	Scope   Scope
	Clock   *hlc.Clock
	Store   Store
	Log     hclog.Logger
	// Version is this node's software version, told to peers in the
	// handshake (for operators; it decides nothing).
	Version string
	// NoStateTransfer turns state transfer off: this node neither takes
	// nor sends record states in place of the log (statexfer.go), as a
	// node that predates it.
	NoStateTransfer bool
	// Arbitrated, if set, reports whether an arbiter judges a table's
	// writes in the order they reach it (client-wins, server-wins). Only
	// the arbiter (Decided set) sends such a table's records as states:
	// another node may hold writes of it the arbiter has not judged, and
	// a receiver holding them only as states would send its own later
	// writes, which saw them, to the arbiter first (the log keeps that
	// order). Nil: every table may be.
	Arbitrated func(table string) bool
	// StateMinWrites: a peer lacking fewer writes is caught up by the log
	// without weighing record states (0: StateMinWrites; negative: states
	// whenever the peer may take them, unweighed, as tests do).
	StateMinWrites int
	// ChunkBytes bounds a chunk's writes (default MaxChunkBytes; tests
	// use small chunks to cut sessions at many boundaries).
	ChunkBytes int
	// ApplyHook, if set, runs inside the batch that applies remote writes
	// (after the store's own changes); keys it adds commit atomically with
	// them. The policy arbiter queues its decisions here. It needs a
	// *store.Store (its batch is a *store.Batch).
	ApplyHook func(b *store.Batch, writes []*crdt.Write, res *store.Result) error
	// OnPeerHave, if set, is told what a peer holds at the start of each
	// session (a hub's Collector listens here).
	OnPeerHave func(peer Peer, have map[hlc.NodeID]store.Held)
	// OnApplied, if set, is called after each applied chunk with the
	// store's result (the policy layer and metrics listen here).
	OnApplied func(peer hlc.NodeID, writes []*crdt.Write, res *store.Result)
	// Admit, if set, sees remote writes before they are applied and
	// returns them, in the same order, possibly with some replaced by
	// their elided skeletons (crdt.Write.Elide): a write outside its
	// origin's permissions keeps its sequence number but applies no value.
	// from is the session's peer, or for a gossip push the pushing node
	// (Role empty: gossip does not say).
	Admit func(from Peer, writes []*crdt.Write) []*crdt.Write
	// AdmitRecord, if set, sees each whole record a peer sends (a
	// RecordReq's answer) before it is merged: false refuses it, and it is
	// taken as Missing (the writes waiting for it stay unheld, for another
	// partner to bring).
	AdmitRecord func(from Peer, table, id string) bool
	// Assign, if set (a hub with offline profiles), returns the scope a
	// peer is assigned; the session enforces it whatever the peer
	// declares, and tells a device that dialed.
	Assign func(p Peer) (Scope, bool)
	// OnAssigned, if set, is told the scope a hub assigned this replica
	// when it differs from the one in force (which it replaces at once).
	OnAssigned func(Scope)
	// Limit, if set, returns what a peer may read (its read permissions
	// as a scope: the tables, each whole or projected to some fields; ok
	// false: no restriction). Whichever side dialed, the session serves
	// the peer its scope (declared or assigned) restricted to it.
	Limit func(p Peer) (Scope, bool)
	// Stripped, if set, reports the tables this replica holds, or held,
	// projected to some fields: its change log may hold other origins'
	// writes to them without some fields, which it never relays.
	Stripped func(table string) bool
	// Filter, if set, returns the filter for what a session takes from
	// peer p (authenticated by then), or nil to take everything (see
	// WriteFilter).
	Filter func(p Peer) *WriteFilter
	// Advertise, if set, returns the API and gossip addresses this node
	// tells the peers that dial it (in its Welcome).
	Advertise func() (api, gossip string)
	// Decided, if set (the arbitrating hub), returns the highest sequence
	// number up to which this node holds every write of origin and has
	// carried out its policy decision on each; told to the peers that
	// dial it (Welcome.Decided).
	Decided func(origin hlc.NodeID) uint64
	// Counters count what the defences did (NewEngine sets it).
	Counters *Counters
	voids    *voidBook     // false empty claims to pass on (NewEngine sets it)
	caps     *Capabilities // the store's (Capabilities)

	dyn *dynState // the scope in force and its evaluation (scope_eval.go)
}

// Peer describes the other side of a session, once known.
type Peer struct {
	Node    hlc.NodeID
	Cluster string
	Role    string
	Scope   Scope
	// SkewMs is the peer's physical clock minus this node's, measured at
	// the handshake (within the message's transit time).
	SkewMs int64
	// Version is the software version the peer announced ("" if none).
	Version string
	// APIAddr and GossipAddr are what a listener advertised in its
	// Welcome (known to the dialer only; "" if none).
	APIAddr, GossipAddr string
	// Arbiter and Decided: a listener that arbitrates, and how far it has
	// decided the dialer's writes (Welcome.Decided; dialer only).
	Arbiter bool
	Decided uint64
}

// Stats counts what a session did.
type Stats struct {
	WritesSent, WritesApplied, Duplicates, Parked, Deferred uint64
	// Refused counts writes the session's WriteFilter did not take.
	Refused                      uint64
	EmptiesSent, EmptiesReceived uint64
	ChunksSent, ChunksReceived   uint64
	RecordsFetched               uint64
	// State transfer (statexfer.go): records sent and merged as whole
	// states, and the sequence numbers covered by them, sent and newly
	// held.
	StateRecordsSent, StateRecords uint64
	StateCoveredSent, StateClaimed uint64
	BytesSent, BytesReceived       uint64 // filled by the transport driver
}

// RefusedError is a handshake refusal, by either side.
type RefusedError struct {
	Reason     string
	RetryAfter uint32 // ms; 0: not soon
}

func (e *RefusedError) Error() string { return "replication: session refused: " + e.Reason }

// ErrProtocol marks a peer that broke the protocol (a message out of
// place). The connection must be closed.
var ErrProtocol = errors.New("replication: protocol violation")

// Session is one sync session's state machine. It is not safe for
// concurrent use: one goroutine feeds it.
type Session struct {
	l      *Local
	dialer bool
	phase  phase
	peer   Peer

	// Sending side.
	snd      *sender
	nextNo   uint64
	unacked  int
	sentDone bool

	// Receiving side.
	gotDone  bool
	deferred []*crdt.Write // writes waiting for their record
	asked    []request     // outstanding record requests, in order
	awaiting int           // record requests outstanding
	pev      *Eval         // the peer scope's evaluation (peerEval)

	wf             *WriteFilter  // what this side takes from the peer (nil: everything)
	refusedEmpties bool          // refuseEmpties logged this session
	peerAccept     []OriginMatch // origins the peer takes from this side (nil: every one)
	tookState      bool          // this side's Have took record states (statexfer.go)
	stateBroken    bool          // a state was not merged: the claims are not held

	Stats Stats
	mu    sync.Mutex // guards the byte counters, which the writer updates

	// Authenticate, if set, checks the peer's claimed identity (node id,
	// role) against what its transport proved (a TLS certificate); an
	// error refuses the session.
	Authenticate func(Peer) error
	// Admit, if set (a listener), decides once the peer is known and
	// authenticated whether it keeps its slot; a *RefusedError refuses
	// the session with its code and retry delay.
	Admit func(Peer) error
	// TrustHorizon, if set, reports whether the peer may bring the
	// tombstone horizon (see horizonSource); the engine sets it.
	TrustHorizon func(Peer) bool
}

// horizonSource reports whether the peer's tombstone horizon may be
// adopted. Never a device's (its role claim, proven or not, says it
// judges nothing), and never an unproven hub's: with TrustHorizon unset,
// a hub this side dialed (the dialer chose whom to dial; the engine
// narrows this to configured hubs and authenticated ones).
func (s *Session) horizonSource() bool {
	if s.peer.Role != "hub" {
		return false
	}
	if s.TrustHorizon != nil {
		return s.TrustHorizon(s.peer)
	}
	return s.dialer
}

type phase uint8

// request is a record request in flight: the records asked for and the
// writes waiting for them.
type request struct {
	scan   []string // a Scan listing request (reconcile.go)
	keys   []RecordKey
	held   []RecordKey // records refreshed because writes to them were skipped
	writes []*crdt.Write
	skips  []Skip
}

const (
	phaseStart phase = iota
	phaseHandshake
	phaseExchange
	phaseFinished
)

// NewSession returns a session for the dialer (who sends Hello) or the
// listener.
func NewSession(l *Local, dialer bool) *Session {
	if l.Log == nil {
		l.Log = hclog.NewNullLogger()
	}
	l.Capabilities()
	return &Session{l: l, dialer: dialer}
}

// peerEval is the Eval of the peer's scope for this session: the time at
// this node's clock, related ids computed once per session.
func (s *Session) peerEval() *Eval {
	if s.pev == nil {
		s.pev = relatedEval(s.peer.Scope, s.l.scanner(), s.l.Clock.Physical())
	}
	return s.pev
}

// Peer returns the peer, once the handshake is done.
func (s *Session) Peer() Peer { return s.peer }

// Finished reports whether both sides have sent everything and every
// chunk and record request is answered.
func (s *Session) Finished() bool { return s.phase == phaseFinished }

// Start returns the first messages: Hello for the dialer, nothing for the
// listener.
func (s *Session) Start() []Msg {
	s.phase = phaseHandshake
	if !s.dialer {
		return nil
	}
	return []Msg{{Hello: &Hello{Proto: ProtocolVersion, Cluster: s.l.Cluster, Node: uint64(s.l.Node), Role: s.l.Role, Scope: s.l.scope(), PhysMs: s.l.Clock.Physical(), Version: s.l.Version}}}
}

// Handle takes one message from the peer and returns the messages to send.
// An error ends the session; the caller closes the connection (after
// sending the returned messages, if any: a refusal or an Error).
func (s *Session) Handle(m Msg) ([]Msg, error) {
	if m.Error != nil {
		s.phase = phaseFinished
		return nil, fmt.Errorf("replication: peer ended the session: %s", m.Error.Reason)
	}
	switch s.phase {
	case phaseHandshake:
		return s.handshake(m)
	case phaseExchange:
		return s.exchange(m)
	default:
		return nil, fmt.Errorf("%w: %v after the session ended", ErrProtocol, m.Type())
	}
}

func (s *Session) exchange(m Msg) ([]Msg, error) {
	switch {
	case m.Have != nil:
		if s.snd != nil {
			return nil, fmt.Errorf("%w: second have", ErrProtocol)
		}
		theirs := s.originAuthority(m.Have)
		if err := s.checkHorizon(theirs, m.Have.GC); err != nil {
			s.phase = phaseFinished
			return []Msg{{Error: &ErrorMsg{Reason: err.Error()}}}, err
		}
		if s.l.OnPeerHave != nil {
			s.l.OnPeerHave(s.peer, theirs)
		}
		if a := m.Have.Accept; a != nil {
			ms, err := a.matches()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			s.peerAccept = ms
			if s.peerAccept == nil {
				s.peerAccept = []OriginMatch{}
			}
		}
		s.snd = newSender(s, theirs)
		if err := s.snd.plan(m.Have); err != nil {
			return nil, err
		}
		if s.wf != nil {
			// Whole records from a filtered peer cannot be judged write by
			// write: reconciliation is left to sessions with hubs.
			return s.pump(nil)
		}
		return s.pump(s.reconcile(s.refreshHidden(nil)))
	case m.Chunk != nil:
		if s.gotDone {
			return nil, fmt.Errorf("%w: chunk after done", ErrProtocol)
		}
		return s.receiveChunk(m.Chunk)
	case m.Ack != nil:
		if s.unacked == 0 {
			return nil, fmt.Errorf("%w: ack without a chunk", ErrProtocol)
		}
		s.unacked--
		return s.pump(nil)
	case m.RecordReq != nil:
		return s.serveRecords(m.RecordReq)
	case m.Records != nil:
		if s.awaiting == 0 {
			return nil, fmt.Errorf("%w: records not asked for", ErrProtocol)
		}
		s.awaiting--
		return s.receiveRecords(m.Records)
	case m.Done != nil:
		if s.gotDone {
			return nil, fmt.Errorf("%w: second done", ErrProtocol)
		}
		s.gotDone = true
		s.checkFinished()
		return nil, nil
	}
	return nil, fmt.Errorf("%w: %v during the exchange", ErrProtocol, m.Type())
}

func (s *Session) checkFinished() {
	if s.sentDone && s.gotDone && s.unacked == 0 && s.awaiting == 0 && s.phase != phaseFinished {
		s.phase = phaseFinished
		s.rescope()
	}
}

// pump sends chunks while the window allows, then Done.
func (s *Session) pump(out []Msg) ([]Msg, error) {
	if s.snd == nil {
		return out, nil
	}
	for s.unacked < Window && !s.snd.done {
		c, err := s.snd.next()
		if err != nil {
			return out, err
		}
		if c == nil {
			break
		}
		s.nextNo++
		c.No = s.nextNo
		s.unacked++
		s.Stats.ChunksSent++
		out = append(out, Msg{Chunk: c})
	}
	// Done waits for the answer to a Scan: the records it makes this
	// side ask for must reach the peer before the peer may finish.
	if s.snd.done && s.unacked == 0 && !s.sentDone && !s.scanPending() {
		s.sentDone = true
		out = append(out, Msg{Done: &Done{Writes: s.Stats.WritesSent, Empties: s.Stats.EmptiesSent}})
	}
	s.checkFinished()
	return out, nil
}

// checkOwnOrigin refuses a chunk that claims writes (or empty or skipped
// sequence numbers) of this node's own origin: this node made every one of
// its writes and holds them all, so no peer has any to send; a peer that
// does forges them, and holding them would shadow this node's next ones.
func (s *Session) checkOwnOrigin(c *Chunk, writes []*crdt.Write) error {
	for _, w := range writes {
		if w.Origin == s.l.Node {
			return fmt.Errorf("%w: chunk %d: write %d claims this node's origin %s", ErrProtocol, c.No, w.Seq, w.Origin)
		}
	}
	for _, e := range c.Empties {
		if hlc.NodeID(e.Origin) == s.l.Node {
			return fmt.Errorf("%w: chunk %d: empties claim this node's origin", ErrProtocol, c.No)
		}
	}
	for _, k := range c.Skips {
		if hlc.NodeID(k.Origin) == s.l.Node {
			return fmt.Errorf("%w: chunk %d: skip claims this node's origin", ErrProtocol, c.No)
		}
	}
	return nil
}

func (s *Session) receiveChunk(c *Chunk) ([]Msg, error) {
	s.Stats.ChunksReceived++
	// The body's origin dictionary starts with the sender, then us (see
	// wire.go); decoding validates writes, values and names.
	writes, err := decodeChunkWrites(c.Body, s.peer.Node, s.l.Node)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d: %v", ErrProtocol, c.No, err)
	}
	if err := s.checkOwnOrigin(c, writes); err != nil {
		return nil, err
	}
	if len(c.Recs) > 0 || len(c.Covered) > 0 {
		if err := s.receiveStates(c); err != nil {
			return nil, err
		}
	}
	writes = s.filterChunk(c, writes)
	s.refuseEmpties(c)
	empties := map[hlc.NodeID][]store.SeqRange{}
	for _, e := range c.Empties {
		o := hlc.NodeID(e.Origin)
		if e.Contig > 0 {
			empties[o] = append(empties[o], store.SeqRange{Lo: 1, Hi: e.Contig})
		}
		for i := 0; i < len(e.Ranges); i += 2 {
			empties[o] = append(empties[o], store.SeqRange{Lo: e.Ranges[i], Hi: e.Ranges[i+1]})
			s.Stats.EmptiesReceived += e.Ranges[i+1] - e.Ranges[i] + 1
		}
	}
	// Skipped writes: held at once for records this replica does not
	// hold; for the others, the record is refreshed whole first.
	var refresh []Skip
	skippedAbsent := map[RecordKey]crdt.VV{}
	coverAll := s.peer.Scope.Covers(s.l.scope())
	for _, k := range c.Skips {
		if !store.ValidTable(k.Table) || !store.ValidID(k.ID) {
			return nil, fmt.Errorf("%w: chunk %d: skip of invalid record %q/%q", ErrProtocol, c.No, k.Table, k.ID)
		}
		if _, err := s.l.Store.GetAny(k.Table, k.ID); err == nil {
			if s.wf == nil {
				refresh = append(refresh, k)
			}
			// From a filtered peer the record is not fetched: the skip is
			// not held and comes again (or from a hub).
			continue
		}
		// Not held here: hold the write without it, and remember it
		// against the record (hidden, with the write skipped), so that if
		// the record enters the scope later it is shown only from a state
		// that includes the write. From a peer whose scope covers this
		// replica's, nothing is remembered: a record that enters the
		// scope is listed by the next reconciliation and fetched whole
		// from such a peer (and a write to it that arrives first is held
		// until then: its context names the skipped write). A device with
		// a narrow profile on a large hub keeps no marker per record it
		// does not hold.
		o := hlc.NodeID(k.Origin)
		empties[o] = append(empties[o], store.SeqRange{Lo: k.Seq, Hi: k.Seq})
		s.Stats.EmptiesReceived++
		if coverAll {
			continue
		}
		rk := RecordKey{Table: k.Table, ID: k.ID}
		vv := skippedAbsent[rk]
		vv.Set(crdt.Dot{Node: o, Seq: k.Seq})
		skippedAbsent[rk] = vv
	}
	out, err := s.apply(writes, empties, skippedAbsent)
	if err != nil {
		return nil, err
	}
	if err := s.claimStates(c); err != nil {
		return nil, err
	}
	if len(refresh) > 0 {
		var keys []RecordKey
		seen := map[RecordKey]bool{}
		for _, k := range refresh {
			rk := RecordKey{Table: k.Table, ID: k.ID}
			if !seen[rk] {
				seen[rk] = true
				keys = append(keys, rk)
			}
		}
		s.awaiting++
		s.asked = append(s.asked, request{held: keys, skips: refresh})
		out = append(out, Msg{RecordReq: &RecordReq{Held: keys}})
	}
	out = append(out, Msg{Ack: &Ack{No: c.No, Applied: uint32(len(writes))}})
	return out, nil
}

// apply applies writes and empties; deferred writes are kept and their
// records requested from the peer.
func (s *Session) apply(writes []*crdt.Write, empties map[hlc.NodeID][]store.SeqRange, hide map[RecordKey]crdt.VV) ([]Msg, error) {
	// For tables this replica holds only in part (filtered scope), a write
	// is applied only if this replica has every write to the record that
	// the write had seen: otherwise the record is entering the scope, or
	// writes to it were skipped while it was out of scope, and the whole
	// record must be fetched.
	var held []*crdt.Write
	if writes, held = s.l.causalReady(writes); len(held) > 0 {
		s.deferred = append(s.deferred, held...)
	}
	res, fetch, err := s.l.applyRemote(s.peer, writes, empties, hide, nil)
	if err != nil {
		return nil, err
	}
	s.count(writes, res)
	for _, i := range res.Deferred {
		s.deferred = append(s.deferred, writes[i])
	}
	s.Stats.Deferred += uint64(len(res.Deferred) + len(held))
	if s.wf != nil {
		// A filtered peer's records are not fetched (they could carry
		// writes the filter never judged): deferred writes are dropped,
		// not held, and come again once their predecessors are here.
		s.deferred = nil
		return nil, nil
	}
	if len(s.deferred) == 0 && len(fetch) == 0 {
		return nil, nil
	}
	keys := fetch
	seen := map[RecordKey]bool{}
	for _, k := range fetch {
		seen[k] = true
	}
	for _, w := range s.deferred {
		k := RecordKey{Table: w.Table, ID: w.ID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	s.awaiting++
	s.asked = append(s.asked, request{keys: keys, writes: s.deferred})
	s.deferred = nil
	return []Msg{{RecordReq: &RecordReq{Keys: keys}}}, nil
}

// refreshHidden asks a peer whose scope covers this replica's (so its
// state of them is complete) for the hidden records whose state is kept:
// those back in scope are shown again, the others purged.
func (s *Session) refreshHidden(out []Msg) []Msg {
	if s.l.scope().All || !s.peer.Scope.Covers(s.l.scope()) {
		return out
	}
	lister := s.l.Capabilities().Hidden
	if lister == nil {
		return out
	}
	var keys []RecordKey
	for _, h := range lister.ListHidden(1000) {
		keys = append(keys, RecordKey{Table: h[0], ID: h[1]})
	}
	if len(keys) == 0 {
		return out
	}
	s.awaiting++
	s.asked = append(s.asked, request{held: keys})
	return append(out, Msg{RecordReq: &RecordReq{Held: keys}})
}

// coveredBy reports whether this replica's state of k holds no write that
// the sender's version vector (flattened) lacks, so dropping it loses
// nothing the sender could not give back.
func (s *Session) coveredBy(k RecordKey, flat []uint64) bool {
	if len(flat)%2 != 0 {
		return false
	}
	var theirs crdt.VV
	for i := 0; i < len(flat); i += 2 {
		theirs.Set(crdt.Dot{Node: hlc.NodeID(flat[i]), Seq: flat[i+1]})
	}
	rec, err := s.l.Store.GetAny(k.Table, k.ID)
	if err != nil {
		return errors.Is(err, store.ErrNotFound)
	}
	return rec.Applied.LessEq(theirs)
}

func (s *Session) count(writes []*crdt.Write, res *store.Result) {
	s.Stats.WritesApplied += uint64(res.Applied)
	s.Stats.Parked += uint64(len(res.Parked))
	for _, st := range res.Status {
		if st == store.Duplicate {
			s.Stats.Duplicates++
		}
	}
	if s.l.OnApplied != nil && (res.Applied > 0 || len(res.Parked) > 0 || len(res.ParkRefused) > 0) {
		s.l.OnApplied(s.peer.Node, writes, res)
	}
}

// causalReady splits writes to filtered tables whose causal context this
// replica's record does not cover (tracking the writes earlier in the same
// batch) from the rest.
func (l *Local) causalReady(writes []*crdt.Write) (ready, held []*crdt.Write) {
	if l.scope().All {
		return writes, nil
	}
	applied := map[RecordKey]crdt.VV{}
	ready = writes[:0:0]
	for _, w := range writes {
		if !l.scope().NeedsRecord(w.Table) {
			ready = append(ready, w)
			continue
		}
		k := RecordKey{Table: w.Table, ID: w.ID}
		vv, ok := applied[k]
		if !ok {
			if rec, err := l.Store.GetAny(w.Table, w.ID); err == nil {
				vv = rec.Applied.Clone()
			}
		}
		// A hidden record may be stale (its writes were skipped while it
		// was out of scope): it is fetched whole before anything applies.
		_, hidden := l.hiddenSkipped(w.Table, w.ID)
		if vv.Covers(w.Dot()) || !hidden && w.Ctx.LessEq(vv) {
			vv.Set(w.Dot())
			applied[k] = vv
			ready = append(ready, w)
			continue
		}
		applied[k] = vv
		held = append(held, w)
	}
	return ready, held
}
