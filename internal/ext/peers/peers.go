package peers

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

const (
	maxPeerRecords  = 4096
	peerForgetAfter = 30 * 24 * time.Hour // as the tombstone collector forgets replicas
	// FlushEvery is how often the assembly writes the table to the store.
	FlushEvery = 2 * time.Second
	// Session summaries at INFO: at most sessionLogBurst at once, then
	// one per sessionLogEvery; the next line counts those left out.
	sessionLogBurst = 20
	sessionLogEvery = time.Second
)

// Side is one direction of a peer: the sessions it dialed to this node
// (served) or this node dialed to it.
type Side struct {
	Addr        string            `json:"addr"`
	FirstSeen   int64             `json:"first_seen"`   // Unix ms
	LastSession int64             `json:"last_session"` // Unix ms, end of the last session (any result)
	LastSuccess int64             `json:"last_success,omitempty"`
	Result      string            `json:"result"` // of the last session: ok, refused, failed
	LastError   string            `json:"last_error,omitempty"`
	Failures    int               `json:"failures"` // consecutive
	Sessions    uint64            `json:"sessions"`
	WritesIn    uint64            `json:"writes_in"`  // applied here, over every session
	WritesOut   uint64            `json:"writes_out"` // sent to it, over every session
	DurationMs  int64             `json:"duration_ms"`
	SkewMs      int64             `json:"skew_ms"`
	Last        replication.Stats `json:"last"`
}

// Record is what is kept of one peer node.
type Record struct {
	Role    string `json:"role"`
	Version string `json:"version,omitempty"`
	Dialed  *Side  `json:"dialed,omitempty"`
	Served  *Side  `json:"served,omitempty"`
	// Known is how many of the sequence numbers this node held at the end
	// of the peer's last session the peer held then (what it declared,
	// plus, after a session that finished, everything this node held at
	// its start); KnownSet: Known means something.
	Known    uint64 `json:"known"`
	KnownSet bool   `json:"known_set"`

	// The tables the last successful session exchanged (all: every one),
	// to write as per-table peer state at the next flush.
	tables    []string
	allTables bool
	tablesAt  int64
}

func (p *Record) last() int64 {
	var t int64
	for _, s := range []*Side{p.Dialed, p.Served} {
		if s != nil && s.LastSession > t {
			t = s.LastSession
		}
	}
	return t
}

// sessionStart is what a running session's handshake told: the peer's
// holdings and this node's.
type sessionStart struct {
	theirs, ours map[hlc.NodeID]store.Held
}

// Book is the peer table.
type Book struct {
	st  *store.Store
	log hclog.Logger
	now func() time.Time

	mu     sync.Mutex
	nodes  map[hlc.NodeID]*Record
	tables map[string]int64 // table -> Unix ms of the last successful session that exchanged it
	allAt  int64            // the last successful session that exchanged every table
	starts map[hlc.NodeID]*sessionStart
	dirty  map[hlc.NodeID]bool
	gone   map[hlc.NodeID]bool

	// INFO session lines: a token bucket.
	tokens     float64
	tokensAt   time.Time
	suppressed int
}

// New loads what st remembers of its peers (now nil: the wall clock).
func New(st *store.Store, log hclog.Logger, now func() time.Time) (*Book, error) {
	if now == nil {
		now = time.Now
	}
	b := &Book{st: st, log: log, now: now, nodes: map[hlc.NodeID]*Record{}, tables: map[string]int64{},
		starts: map[hlc.NodeID]*sessionStart{}, dirty: map[hlc.NodeID]bool{}, gone: map[hlc.NodeID]bool{}, tokens: sessionLogBurst}
	infos, err := st.PeerInfos()
	if err != nil {
		return nil, err
	}
	for n, v := range infos {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			log.Warn("a peer's record does not decode; forgetting it", "peer", n, "error", err)
			b.gone[n] = true
			continue
		}
		b.nodes[n] = &r
	}
	states, err := st.ListPeerStates(0)
	if err != nil {
		return nil, err
	}
	for _, ps := range states {
		if _, ok := b.nodes[ps.Peer]; !ok {
			continue
		}
		if ps.LastSync > b.tables[ps.Table] {
			b.tables[ps.Table] = ps.LastSync
		}
	}
	b.mu.Lock()
	b.forget()
	b.mu.Unlock()
	return b, nil
}

// IsHub reports whether n synced with this node as a hub (the peer
// table survives restarts).
func (b *Book) IsHub(n hlc.NodeID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.nodes[n]
	return r != nil && r.Role == "hub"
}

// Started notes what a session's handshake told (Local.OnPeerHave).
func (b *Book) Started(p replication.Peer, theirs map[hlc.NodeID]store.Held) {
	if p.Node == 0 {
		return
	}
	ours := b.st.Holdings()
	b.mu.Lock()
	b.starts[p.Node] = &sessionStart{theirs: theirs, ours: ours}
	b.mu.Unlock()
}

// SessionResult is a session's result: "ok", "refused" or "failed".
func SessionResult(err error) string {
	var re *replication.RefusedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &re):
		return "refused"
	}
	return "failed"
}

// Ended records a finished session (replication.Config.OnSession).
func (b *Book) Ended(in replication.SessionInfo) {
	now := b.now()
	ms := now.UnixMilli()
	result := SessionResult(in.Err)
	b.mu.Lock()
	defer b.mu.Unlock()
	node := in.Peer.Node
	if node == 0 && in.Dialed {
		// A dialed session that failed before its handshake: the node
		// last reached at that address.
		for n, r := range b.nodes {
			if r.Dialed != nil && r.Dialed.Addr == in.Addr && (node == 0 || r.Dialed.LastSession > b.nodes[node].Dialed.LastSession) {
				node = n
			}
		}
	}
	start := b.starts[in.Peer.Node]
	if in.Peer.Node != 0 {
		delete(b.starts, in.Peer.Node)
	}
	if node == 0 {
		return // nothing to name it by (refused busy or offline, unreachable)
	}
	r := b.nodes[node]
	if r == nil {
		r = &Record{}
		b.nodes[node] = r
		b.bound(node)
	}
	if in.Peer.Node != 0 {
		r.Role, r.Version = in.Peer.Role, in.Peer.Version
	}
	side := &r.Served
	if in.Dialed {
		side = &r.Dialed
	}
	s := *side
	if s == nil {
		s = &Side{FirstSeen: ms}
		*side = s
	}
	s.Addr = in.Addr
	s.LastSession = ms
	s.Result = result
	s.Sessions++
	s.WritesIn += in.Stats.WritesApplied
	s.WritesOut += in.Stats.WritesSent
	s.Last = in.Stats
	s.DurationMs = in.Duration.Milliseconds()
	if in.Peer.Node != 0 {
		s.SkewMs = in.Peer.SkewMs
	}
	if in.Err != nil {
		s.Failures++
		s.LastError = in.Err.Error()
	} else {
		s.Failures = 0
		s.LastError = ""
		s.LastSuccess = ms
		sc := in.Peer.Scope
		r.allTables, r.tables, r.tablesAt = sc.All, nil, ms
		if sc.All {
			b.allAt = ms
		}
		for _, t := range sc.Tables {
			r.tables = append(r.tables, t.Table)
			b.tables[t.Table] = ms
		}
	}
	if start != nil {
		r.Known, r.KnownSet = knownOf(start, b.st.Holdings(), in.Err == nil), true
	}
	b.dirty[node] = true
}

// knownOf counts the sequence numbers of ours the peer held at the end of
// a session: those it declared, and, if the session finished, every one
// this node held at its start (the session sent them, or declared them
// outside the peer's scope).
func knownOf(start *sessionStart, ours map[hlc.NodeID]store.Held, finished bool) uint64 {
	var n uint64
	for o, h := range ours {
		u := start.theirs[o].Clone()
		if finished {
			s := start.ours[o]
			u.Add(1, s.Contig)
			for _, r := range s.Ranges {
				u.Add(r.Lo, r.Hi)
			}
		}
		n += heldCount(h) - rangesLen(u.Missing(h))
	}
	return n
}

func heldCount(h store.Held) uint64 {
	return h.Contig + rangesLen(h.Ranges)
}

func rangesLen(rs []store.SeqRange) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Hi - r.Lo + 1
	}
	return n
}

// bound forgets the least recently seen peer when there are too many
// (keep is the one just added). Caller holds b.mu.
func (b *Book) bound(keep hlc.NodeID) {
	for len(b.nodes) > maxPeerRecords {
		var oldest hlc.NodeID
		var at int64
		for n, r := range b.nodes {
			if n != keep && (oldest == 0 || r.last() < at) {
				oldest, at = n, r.last()
			}
		}
		b.drop(oldest)
	}
}

func (b *Book) drop(n hlc.NodeID) {
	delete(b.nodes, n)
	delete(b.dirty, n)
	b.gone[n] = true
}

// forget drops the peers not seen for peerForgetAfter. Caller holds b.mu.
func (b *Book) forget() {
	cut := b.now().Add(-peerForgetAfter).UnixMilli()
	for n, r := range b.nodes {
		if r.last() < cut {
			b.drop(n)
		}
	}
}

// FlushLoop writes the table to the store every FlushEvery until done
// (the assembly's last Flush, at close, writes the rest).
func (b *Book) FlushLoop(done <-chan struct{}) {
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := b.Flush(); err != nil && !errors.Is(err, store.ErrClosed) {
				b.log.Warn("writing the peer table", "error", err)
			}
		}
	}
}

// Flush writes the changed records to the store, in one batch.
func (b *Book) Flush() error {
	b.mu.Lock()
	b.forget()
	if len(b.dirty) == 0 && len(b.gone) == 0 {
		b.mu.Unlock()
		return nil
	}
	type put struct {
		n      hlc.NodeID
		v      []byte
		tables []string
		all    bool
		at     int64
	}
	var puts []put
	for n := range b.dirty {
		r := b.nodes[n]
		v, err := json.Marshal(r)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		puts = append(puts, put{n: n, v: v, tables: r.tables, all: r.allTables, at: r.tablesAt})
		r.tables, r.allTables = nil, false
	}
	gone := b.gone
	b.dirty, b.gone = map[hlc.NodeID]bool{}, map[hlc.NodeID]bool{}
	b.mu.Unlock()
	var all []string
	for _, p := range puts {
		if p.all {
			ts, err := b.st.Tables()
			if err != nil {
				return err
			}
			all = ts
			break
		}
	}
	return b.st.Update(func(bt *store.Batch) error {
		for n := range gone {
			bt.DeletePeer(n)
		}
		for _, p := range puts {
			bt.PutPeerInfo(p.n, p.v)
			ts := p.tables
			if p.all {
				ts = all
			}
			for _, t := range ts {
				bt.PutPeerState(&store.PeerState{Peer: p.n, Table: t, LastSync: p.at})
			}
		}
		return nil
	})
}

// TableSync returns the last successful session that exchanged table
// (zero if none).
func (b *Book) TableSync(table string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	ms := max(b.tables[table], b.allAt)
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// LogSession writes the one-line INFO summary of a session, rate-limited
// (a token bucket); every session is logged at DEBUG by the engine.
func (b *Book) LogSession(in replication.SessionInfo) {
	b.mu.Lock()
	now := b.now()
	b.tokens = min(sessionLogBurst, b.tokens+now.Sub(b.tokensAt).Seconds()/sessionLogEvery.Seconds())
	b.tokensAt = now
	if b.tokens < 1 {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	b.tokens--
	left := b.suppressed
	b.suppressed = 0
	b.mu.Unlock()
	dir := "served"
	if in.Dialed {
		dir = "dialed"
	}
	args := []any{"direction", dir, "peer", nodeText(in.Peer.Node), "role", in.Peer.Role, "addr", in.Addr, "result", SessionResult(in.Err),
		"writes_in", in.Stats.WritesApplied, "writes_out", in.Stats.WritesSent, "bytes_in", in.Stats.BytesReceived, "bytes_out", in.Stats.BytesSent,
		"duration", in.Duration.Round(time.Millisecond).String()}
	if in.Err != nil {
		args = append(args, "error", in.Err.Error())
	}
	if left > 0 {
		args = append(args, "not_logged_before", left)
	}
	b.log.Info("sync session", args...)
}

func nodeText(n hlc.NodeID) string {
	if n == 0 {
		return ""
	}
	return n.String()
}

// Counts returns how many peers the table holds per direction.
func (b *Book) Counts() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{"dialed": 0, "served": 0}
	for _, r := range b.nodes {
		if r.Dialed != nil {
			out["dialed"]++
		}
		if r.Served != nil {
			out["served"]++
		}
	}
	return out
}

// Each calls fn for every remembered peer, under the book's lock (fn
// must not call the book).
func (b *Book) Each(fn func(n hlc.NodeID, rec *Record)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n, rec := range b.nodes {
		fn(n, rec)
	}
}

// HeldCount is the number of sequence numbers h holds.
func HeldCount(h store.Held) uint64 { return heldCount(h) }
