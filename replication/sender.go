package replication

import (
	"container/heap"
	"errors"
	"sort"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// ---- sending ----

// sender walks this node's change log for what the peer lacks.
type sender struct {
	s       *Session
	cursors []*cursor
	heads   cursorHeap
	done    bool
	started bool
	st      *stateSend // record states to send first (statexfer.go), or nil
	theirs  map[hlc.NodeID]store.Held
}

type cursor struct {
	origin   hlc.NodeID
	mine     store.Held // what this node holds of origin
	theirs   store.Held // what the peer holds
	after    uint64     // last seq streamed
	buf      []*crdt.Write
	drained  bool // the log has nothing after buf
	empties  store.Held
	skips    []Skip
	coverAll bool // this node's scope covers the peer's
	// state: what this node holds of origin through a transferred state
	// (no log entry); covered: what the records sent to the peer include
	// (state transfer, statexfer.go).
	state   store.Held
	covered store.Held
}

const cursorBatch = 256

var errStop = errors.New("stop")

func newSender(s *Session, theirs map[hlc.NodeID]store.Held) *sender {
	snd := &sender{s: s, theirs: theirs}
	coverAll := s.l.scope().Covers(s.peer.Scope)
	mine := s.l.Store.Holdings()
	origins := make([]hlc.NodeID, 0, len(mine))
	for o := range mine {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
	for _, o := range origins {
		m, t := mine[o], theirs[o]
		if m.Max() <= t.Contig && len(t.Ranges) == 0 {
			continue // the peer holds everything this node does
		}
		if !s.peerAccepts(o) {
			continue // the peer does not take this origin's writes from us
		}
		if o == s.peer.Node {
			continue // the peer made them: it holds them all (originAuthority)
		}
		snd.cursors = append(snd.cursors, &cursor{origin: o, mine: m, theirs: t, after: t.Contig, coverAll: coverAll})
	}
	return snd
}

// fill loads the cursor's buffer; writes the peer holds or that fall
// outside its scope are turned into empties on the way. For a peer whose
// scope lists tables, writes of other tables are not even decoded.
func (c *cursor) fill(s *Session) error {
	if s.snd.st != nil {
		return c.fillState(s) // statexfer.go
	}
	if !c.drained && c.coverAll && !s.peer.Scope.All {
		if ot := s.l.Capabilities().Log; ot != nil && !ot.OriginMayWrite(c.origin, s.peer.Scope.lists) {
			// None of the origin's log entries here writes a table the
			// peer's scope lists: everything this node holds of it that
			// the peer lacks is empty to the peer, without reading the log
			// (this node's scope covers the peer's, so what it holds
			// without a log entry is empty to the peer too).
			for _, g := range c.theirs.Missing(intersect(c.mine, c.after+1, c.mine.Max())) {
				c.empties.Add(g.Lo, g.Hi)
			}
			c.after = max(c.after, c.mine.Max())
			c.drained = true
			return nil
		}
	}
	for len(c.buf) == 0 && !c.drained {
		n := 0
		prev := c.after
		handle := func(seq uint64, w *crdt.Write) error {
			c.noteGap(prev, seq)
			prev = seq
			c.after = seq
			n++
			if !c.theirs.Contains(seq) {
				if w == nil {
					// A table the peer's scope does not list.
					c.empties.Add(seq, seq)
				} else if err := c.take(s, w); err != nil {
					return err
				}
			}
			if n >= cursorBatch {
				return errStop
			}
			return nil
		}
		var err error
		if ts := s.l.Capabilities().Log; ts != nil && !s.peer.Scope.All {
			err = ts.StreamTables(c.origin, c.after, s.peer.Scope.lists, handle)
		} else {
			err = s.l.Store.Stream(c.origin, c.after, func(w *crdt.Write) error { return handle(w.Seq, w) })
		}
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if n < cursorBatch {
			c.drained = true
			c.noteGap(prev, c.mine.Max()+1)
		}
	}
	return nil
}

// take decides what the peer gets of w, a write it lacks: the write,
// a skip, an empty number, or nothing.
func (c *cursor) take(s *Session, w *crdt.Write) error {
	var rec *crdt.Record
	if s.peer.Scope.NeedsRecord(w.Table) {
		r, err := s.l.Store.GetAny(w.Table, w.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec = r
	}
	switch {
	case !s.canRelay(w.Table, w.Origin, false):
		// Held here without some fields: neither sent nor
		// declared empty (the hub brings it whole).
	case s.peer.Scope.Selects(w.Table, w.ID, rec, s.peerEval()) || s.peer.Scope.Touches(w):
		c.buf = append(c.buf, s.peer.Scope.ProjectWrite(w))
	case s.peer.Scope.NeedsRecord(w.Table):
		c.skips = append(c.skips, Skip{Origin: uint64(w.Origin), Seq: w.Seq, Table: w.Table, ID: w.ID})
	default:
		c.empties.Add(w.Seq, w.Seq)
	}
	return nil
}

// noteGap records the sequence numbers strictly between a and b that this
// node holds without a log entry (declared empty to it): empty for the
// peer too when this node's scope covers the peer's.
func (c *cursor) noteGap(a, b uint64) {
	if !c.coverAll || b <= a+1 {
		return
	}
	for _, g := range c.theirs.Missing(intersect(c.mine, a+1, b-1)) {
		c.empties.Add(g.Lo, g.Hi)
	}
}

type cursorHeap []*cursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	a, b := h[i].buf[0], h[j].buf[0]
	if a.TS != b.TS {
		return a.TS < b.TS
	}
	return a.Origin < b.Origin
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// next builds the next chunk, or returns nil when everything is sent.
func (snd *sender) next() (*Chunk, error) {
	s := snd.s
	if snd.st != nil && !snd.st.done {
		// Record states go first, before any claim of what they include.
		return snd.st.nextChunk(s)
	}
	if !snd.started {
		snd.started = true
		for _, c := range snd.cursors {
			if err := c.fill(s); err != nil {
				return nil, err
			}
			if len(c.buf) > 0 {
				snd.heads = append(snd.heads, c)
			}
		}
		heap.Init(&snd.heads)
	}
	chunk := &Chunk{}
	limit := s.l.ChunkBytes
	if limit <= 0 || limit > MaxChunkBytes {
		limit = MaxChunkBytes
	}
	// The body's origin dictionary starts with us, then the peer (wire.go).
	enc := newChunkEncoder(s.l.Node, s.peer.Node)
	for len(snd.heads) > 0 && enc.Len() < limit {
		c := snd.heads[0]
		w := c.buf[0]
		if enc.Count() > 0 && enc.Len()+maxWireSize(w) > limit {
			break
		}
		if err := enc.Add(w); err != nil {
			return nil, err
		}
		s.Stats.WritesSent++
		c.buf = c.buf[1:]
		if len(c.buf) == 0 {
			if err := c.fill(s); err != nil {
				return nil, err
			}
		}
		if len(c.buf) == 0 {
			heap.Pop(&snd.heads)
		} else {
			heap.Fix(&snd.heads, 0)
		}
	}
	// Skips found so far travel with this chunk (bounded by what one
	// refill of each cursor can find).
	for _, c := range snd.cursors {
		if len(c.skips) > 0 {
			chunk.Skips = append(chunk.Skips, c.skips...)
			c.skips = nil
		}
	}
	if len(snd.heads) == 0 {
		// Everything streamed: flush every cursor's empties.
		for _, c := range snd.cursors {
			if c.empties.Contig > 0 || len(c.empties.Ranges) > 0 {
				chunk.Empties = append(chunk.Empties, heldToWire(c.origin, c.empties))
				s.Stats.EmptiesSent += count(c.empties)
				c.empties = store.Held{}
			}
			if c.covered.Max() > 0 {
				chunk.Covered = append(chunk.Covered, heldToWire(c.origin, c.covered))
				s.Stats.StateCoveredSent += count(c.covered)
				c.covered = store.Held{}
			}
		}
		snd.done = true
	}
	if enc.Count() == 0 && len(chunk.Empties) == 0 && len(chunk.Skips) == 0 && len(chunk.Covered) == 0 {
		return nil, nil
	}
	chunk.Body = enc.Bytes()
	return chunk, nil
}

// ---- holdings on the wire ----

func heldToWire(o hlc.NodeID, h store.Held) OriginHeld {
	w := OriginHeld{Origin: uint64(o), Contig: h.Contig}
	for _, r := range h.Ranges {
		w.Ranges = append(w.Ranges, r.Lo, r.Hi)
	}
	return w
}

func toWireHeld(m map[hlc.NodeID]store.Held) []OriginHeld {
	out := make([]OriginHeld, 0, len(m))
	for o, h := range m {
		out = append(out, heldToWire(o, h))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

func fromWireHeld(ws []OriginHeld) map[hlc.NodeID]store.Held {
	m := make(map[hlc.NodeID]store.Held, len(ws))
	for _, w := range ws {
		h := store.Held{Contig: w.Contig}
		for i := 0; i < len(w.Ranges); i += 2 {
			h.Add(w.Ranges[i], w.Ranges[i+1])
		}
		m[hlc.NodeID(w.Origin)] = h
	}
	return m
}

// intersect returns h ∩ [lo, hi].
func intersect(h store.Held, lo, hi uint64) store.Held {
	var out store.Held
	if lo > hi {
		return out
	}
	if h.Contig >= lo {
		out.Add(lo, min(hi, h.Contig))
	}
	for _, r := range h.Ranges {
		if r.Hi < lo || r.Lo > hi {
			continue
		}
		out.Add(max(lo, r.Lo), min(hi, r.Hi))
	}
	return out
}

// count returns how many sequence numbers h holds.
func count(h store.Held) uint64 {
	n := h.Contig
	for _, r := range h.Ranges {
		n += r.Hi - r.Lo + 1
	}
	return n
}
