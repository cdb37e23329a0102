package replication

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Counters count what the engine's defences did; read them with Load.
// Every Local gets one (NewEngine sets it).
type Counters struct {
	// OriginContradictions counts empty claims an origin contradicted:
	// a peer held numbers of this node's origin that it never made, or
	// this node held, as empty, numbers of the peer's origin above what
	// the peer itself holds (see originAuthority).
	OriginContradictions atomic.Uint64
	// HandshakesRefused counts incoming handshakes refused (wrong
	// cluster or version, failed authentication, busy, offline).
	HandshakesRefused atomic.Uint64
	// EmptiesRefused counts chunks whose empty claims (or skips) a full
	// replica ignored (see refuseEmpties).
	EmptiesRefused atomic.Uint64
	// SessionsCut counts incoming sessions ended for holding a slot
	// without progress (MaxSessionTime, MinSessionRate).
	SessionsCut atomic.Uint64
}

func (l *Local) counters() *Counters {
	if l.Counters == nil {
		return &Counters{} // a Local used without an engine: counted nowhere
	}
	return l.Counters
}

// originAuthority applies, when the peer's Have arrives (before this side
// streams anything), the rule that an origin is the authority on its own
// sequence numbers: every one of them it holds is a real write, and no
// other node can hold one it never made. Empty claims (ranges a sender
// declared to hold nothing) are the only way a node comes to hold numbers
// no write backs, so a claim the origin contradicts was forged (or
// relayed from a forger):
//
//   - the peer holds numbers of this node's origin above this node's
//     last write: the peer's holdings of this origin cannot be trusted,
//     so every write of it is sent again (theirs is reset; the peer, on
//     this node's Have, drops its empty claims of this origin and takes
//     them);
//   - this node holds numbers of the peer's own origin above what the
//     peer holds of itself, or holds any empty claim of it while this
//     node's scope is everything (a full replica is sent every write its
//     origin makes): this node drops every empty claim it holds of the
//     peer's origin, so that the peer's writes are taken (sent again in
//     this session in the first case, on the peer's side; in the next
//     session otherwise, as this one's Have still claimed them).
//
// Either is logged at ERROR and counted (Counters.OriginContradictions).
// It returns theirs, changed as said.
func (s *Session) originAuthority(have *Have) map[hlc.NodeID]store.Held {
	theirs := fromWireHeld(have.Origins)
	self, peer := s.l.Node, s.peer.Node
	if claimed, mine := theirs[self].Max(), s.l.heldOf(self).Max(); claimed > mine {
		s.l.counters().OriginContradictions.Add(1)
		s.l.Log.Error("a peer holds sequence numbers of this node's origin that this node never made (a forged empty claim reached it): sending it every write of this origin again",
			"peer", peer, "peer_holds", theirs[self].String(), "last_write", mine)
		delete(theirs, self)
	}
	s.applyVoid(have.Void)
	// A full replica is sent every write (refuseEmpties): it holds no
	// empty claim unless one was forged (or taken by an earlier version,
	// or while its scope was narrower). Looking costs one seek, so it
	// looks at every session.
	if s.l.scope().All {
		s.dropAllEmpties()
		return theirs
	}
	if own, held := theirs[peer].Max(), s.l.heldOf(peer).Max(); held > own {
		d := s.l.Capabilities().Empties
		if d == nil {
			return theirs
		}
		dropped, err := d.DropEmpties(peer, nil)
		if err != nil {
			s.l.Log.Error("dropping empty claims the origin contradicts failed", "origin", peer, "error", err)
			return theirs
		}
		if dropped.Max() > 0 {
			s.l.counters().OriginContradictions.Add(1)
			s.l.Log.Error("this node held, as empty, sequence numbers of a peer's origin that the peer contradicts (a forged empty claim): dropped every empty claim of that origin, its writes are taken again",
				"origin", peer, "origin_holds", own, "dropped", dropped.String())
			// Nodes this one relayed the claim to drop it too (Have.Void).
			s.l.voids.addSaved(peer, dropped)
		}
	}
	return theirs
}

// dropAllEmpties drops the empty claims a full replica holds, of every
// origin, and passes the ranges on (Have.Void).
func (s *Session) dropAllEmpties() {
	d := s.l.Capabilities().Empties
	if d == nil {
		return
	}
	all, err := d.DropAllEmpties()
	if err != nil {
		s.l.Log.Error("dropping the empty claims of a full replica failed", "error", err)
	}
	for o, dropped := range all {
		s.l.counters().OriginContradictions.Add(1)
		s.l.Log.Error("this full replica held, as empty, sequence numbers no sender declares empty to it (a forged empty claim): dropped them, the writes are taken again",
			"origin", o, "dropped", dropped.String(), "peer", s.peer.Node)
		s.l.voids.addSaved(o, dropped)
	}
}

// heldOf returns what the store holds of origin.
func (l *Local) heldOf(origin hlc.NodeID) store.Held {
	if h := l.Capabilities().Held; h != nil {
		return h.HeldOf(origin)
	}
	return l.Store.Holdings()[origin]
}

// applyVoid drops, once, the empty claims this node holds within the
// ranges a peer found false (Have.Void), and passes them on in its own
// Haves. A forged list costs the receiver a refetch of what it dropped:
// only empty claims are dropped, never a write.
func (s *Session) applyVoid(void []OriginHeld) {
	d := s.l.Capabilities().Empties
	if d == nil {
		return
	}
	for o, h := range fromWireHeld(void) {
		if o == s.l.Node {
			continue // this node's own origin: it holds every number it made
		}
		fresh := s.l.voids.addSaved(o, h)
		if fresh.Max() == 0 {
			continue
		}
		dropped, err := d.DropEmpties(o, &fresh)
		if err != nil {
			s.l.Log.Error("dropping empty claims a peer found false failed", "origin", o, "error", err)
			continue
		}
		if dropped.Max() > 0 {
			s.l.Log.Warn("dropped empty claims that a peer found false (their origin contradicted them): the writes are taken again",
				"origin", o, "peer", s.peer.Node, "dropped", dropped.String())
		}
	}
}

// voidTTL is how long a node passes on the false empty claims it learned
// of (Have.Void): long enough for every replica that synced with it to
// hear of them, bounded so that the list does not grow forever.
const voidTTL = 7 * 24 * time.Hour

// maxVoidRanges bounds the ranges kept per origin (beyond it they are
// merged into one).
const maxVoidRanges = 64

// voidBook holds the false empty claims this node learned of, to pass on;
// with a store that keeps it (voidStore), across restarts.
type voidBook struct {
	mu     sync.Mutex
	m      map[hlc.NodeID]*voidEntry
	st     VoidKeeper  // nil: in memory only
	log    func(error) // a failed save
	saveMu sync.Mutex  // saves in order
}

// newVoidBook loads the book st kept, if any.
func newVoidBook(vs VoidKeeper, log func(error)) *voidBook {
	b := &voidBook{log: log}
	if vs == nil {
		return b
	}
	b.st = vs
	data, err := vs.Voids()
	if err == nil && len(data) > 0 {
		b.m, err = decodeVoids(data)
	}
	if err != nil {
		log(err)
	}
	return b
}

// save writes the book to the store (after a change).
func (b *voidBook) save() {
	if b == nil || b.st == nil {
		return
	}
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	b.mu.Lock()
	data := encodeVoids(b.m)
	b.mu.Unlock()
	if err := b.st.SetVoids(data); err != nil && b.log != nil {
		b.log(err)
	}
}

// encodeVoids: uvarint count, then per origin: 8 bytes big-endian node
// id, varint learned-at (Unix ms), uvarint contig, uvarint range count,
// uvarint lo and hi of each range.
func encodeVoids(m map[hlc.NodeID]*voidEntry) []byte {
	out := binary.AppendUvarint(nil, uint64(len(m)))
	for o, e := range m {
		out = binary.BigEndian.AppendUint64(out, uint64(o))
		out = binary.AppendVarint(out, e.at.UnixMilli())
		out = binary.AppendUvarint(out, e.held.Contig)
		out = binary.AppendUvarint(out, uint64(len(e.held.Ranges)))
		for _, r := range e.held.Ranges {
			out = binary.AppendUvarint(out, r.Lo)
			out = binary.AppendUvarint(out, r.Hi)
		}
	}
	return out
}

// decodeVoids decodes encodeVoids' output, within the book's bounds.
func decodeVoids(b []byte) (map[hlc.NodeID]*voidEntry, error) {
	bad := errors.New("replication: malformed stored void list")
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := uv()
	if !ok || n > maxVoidOrigins {
		return nil, bad
	}
	m := make(map[hlc.NodeID]*voidEntry, n)
	for i := uint64(0); i < n; i++ {
		if len(b) < 8 {
			return nil, bad
		}
		o := hlc.NodeID(binary.BigEndian.Uint64(b))
		b = b[8:]
		at, k := binary.Varint(b)
		if k <= 0 {
			return nil, bad
		}
		b = b[k:]
		contig, ok1 := uv()
		nr, ok2 := uv()
		if !ok1 || !ok2 || nr > maxVoidRanges+1 || o == 0 {
			return nil, bad
		}
		e := &voidEntry{at: time.UnixMilli(at)}
		if contig > 0 {
			e.held.Add(1, contig)
		}
		for j := uint64(0); j < nr; j++ {
			lo, ok1 := uv()
			hi, ok2 := uv()
			if !ok1 || !ok2 || lo == 0 || hi < lo {
				return nil, bad
			}
			e.held.Add(lo, hi)
		}
		m[o] = e
	}
	if len(b) != 0 {
		return nil, bad
	}
	return m, nil
}

type voidEntry struct {
	held store.Held
	at   time.Time
}

// add records h for origin o and returns the part not known before.
func (b *voidBook) add(o hlc.NodeID, h store.Held) store.Held {
	if b == nil {
		return h
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.expire(now)
	if b.m == nil {
		b.m = map[hlc.NodeID]*voidEntry{}
	}
	e := b.m[o]
	if e == nil {
		if len(b.m) >= maxVoidOrigins {
			return h // full: dropped here, not passed on
		}
		e = &voidEntry{}
		b.m[o] = e
	}
	var fresh store.Held
	for _, r := range e.held.Missing(h) {
		fresh.Add(r.Lo, r.Hi)
		e.held.Add(r.Lo, r.Hi)
	}
	if len(e.held.Ranges) > maxVoidRanges {
		lo := e.held.Ranges[0].Lo
		if e.held.Contig > 0 {
			lo = 1
		}
		var all store.Held
		all.Add(lo, e.held.Max())
		e.held = all
	}
	if fresh.Max() > 0 {
		e.at = now
	}
	return fresh
}

// addSaved is add, then saves the book if it changed.
func (b *voidBook) addSaved(o hlc.NodeID, h store.Held) store.Held {
	fresh := b.add(o, h)
	if fresh.Max() > 0 {
		b.save()
	}
	return fresh
}

func (b *voidBook) expire(now time.Time) {
	for o, e := range b.m {
		if now.Sub(e.at) > voidTTL {
			delete(b.m, o)
		}
	}
}

// wire returns the list to send in a Have.
func (b *voidBook) wire() []OriginHeld {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(time.Now())
	if len(b.m) == 0 {
		return nil
	}
	m := make(map[hlc.NodeID]store.Held, len(b.m))
	for o, e := range b.m {
		m[o] = e.held
	}
	return toWireHeld(m)
}

// refuseEmpties drops the empty claims and skips of a chunk received by a
// full replica (scope everything): no sender declares anything empty to
// it, since every write is in its scope (a sender declares a number empty
// only for a write outside the receiver's scope, or one it holds empty
// itself under a scope covering the receiver's, which a full replica's
// senders never do). So such a claim is forged, or relayed from a replica
// that took one, and taking it would shadow the real writes. Logged at
// ERROR once per session and counted.
func (s *Session) refuseEmpties(c *Chunk) {
	if !s.l.scope().All || len(c.Empties) == 0 && len(c.Skips) == 0 {
		return
	}
	s.l.counters().EmptiesRefused.Add(1)
	if !s.refusedEmpties {
		s.refusedEmpties = true
		s.l.Log.Error("empty claims sent to a full replica ignored (every write is in its scope: a forged empty claim, or one relayed from a replica that took one)",
			"peer", s.peer.Node, "ranges", len(c.Empties), "skips", len(c.Skips))
	}
	c.Empties, c.Skips = nil, nil
}
