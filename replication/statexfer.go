package replication

import (
	"fmt"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// State transfer. A peer that holds nothing (a new device, a reset one) or
// lacks more writes than its records' states weigh is sent the states of
// the records it lacks (Chunk.Recs, first), then, in the session's last
// chunk, the sequence numbers those states include (Chunk.Covered), which
// it holds from then on with no log entry (store.ClaimState). Writes to
// the system tables, and to tables the peer holds filtered unless it holds
// nothing, still travel by the log, through the receiver's hooks.
//
// Who takes it: a receiver says so in its Have (Have.State, acceptsState)
// when no WriteFilter judges the peer's writes one by one, it does not
// arbitrate (an arbiter judges every write it applies), and, on a hub or
// where permissions judge writes (Local.Admit), the peer is a hub. Who sends it: a sender whose
// scope covers the receiver's (its records of every table the receiver
// lists are whole), with a receiver that takes every origin, and that
// either holds nothing or holds every write under the sender's horizon (so
// no record the sender collected lives on there). Old peers neither set
// Have.State nor read Chunk.Recs: they sync by the log.
//
// When: always if the receiver lacks numbers this node holds only through
// a transferred state (it has no log entry to stream them); otherwise when
// the receiver lacks at least Local.StateMinWrites writes and the log entries
// it lacks, of the tables whose records would go instead, would cost more
// on the wire than the records' states (see ARCHITECTURE.md, "State
// transfer").

// StateStore is what state transfer needs of a store (*store.Store).
type StateStore interface {
	MergeStates(clock *hlc.Clock, recs []store.StateRecord, hook func(b store.ScopeBatch, table, id string, rec *crdt.Record) error) (int, []int, error)
	ClaimState(ranges map[hlc.NodeID][]store.SeqRange) (map[hlc.NodeID]store.Held, error)
	StateHeld() (map[hlc.NodeID]store.Held, error)
	LogBytes(origin hlc.NodeID, ranges []store.SeqRange, want func(table []byte) bool, limit int64) (int64, error)
	ScanRaw(table, after string, limit int) ([]store.RawRecord, string, error)
	Tables() ([]string, error)
}

// StateMinWrites is the default of Local.StateMinWrites: below this many
// missing writes the log is always used (no record is read to weigh the
// two).
const StateMinWrites = 512

const (
	// The chunk encoding sends a write in about logWireNum/logWireDen of
	// its stored bytes (0.285 measured on single-field updates of 20-field
	// records, BenchmarkStateTransfer's log-wire/stored); a record goes on
	// the wire as stored. States are sent when the log entries they
	// replace would cost more on the wire: stored log bytes > 3.5x the
	// records' stored bytes.
	logWireNum, logWireDen = 2, 7
	// statePage: records read per page when weighing and sending.
	statePage = 256
)

// StateTake is Have.State of a receiver that takes record states (other
// values are reserved).
const StateTake = 1

// acceptsState returns what this side's Have says of record states from
// the peer in this session: none from a peer whose writes a WriteFilter
// judges, nor on the arbiter (it judges every write it applies), nor on
// a hub or where Admit judges writes (permissions) from a peer that is
// not a hub: states flow from hubs down to devices and between devices,
// never from a device up (a hub that holds a device's writes only
// through a state could not stream them on to the arbiter).
func (s *Session) acceptsState() uint8 {
	if s.l.NoStateTransfer || s.wf != nil || s.l.Decided != nil {
		return 0
	}
	if (s.l.Role == "hub" || s.l.Admit != nil) && s.peer.Role != "hub" {
		return 0
	}
	if s.l.Capabilities().State == nil {
		return 0
	}
	return StateTake
}

// stateTable reports whether the records of table may go as states to
// the peer (a table it lists, not a system table, whose records this node
// may relay whole; a table the peer holds filtered only when it holds
// nothing, since its records that left the filter are refreshed through
// the log's skips).
func (s *Session) stateTable(table string, fresh bool) bool {
	if IsSystemTable(table) || !s.peer.Scope.lists([]byte(table)) || !s.canRelay(table, 0, true) {
		return false
	}
	if s.l.Stripped != nil && s.l.Stripped(table) {
		return false
	}
	if s.l.Decided == nil && (s.l.Arbitrated == nil || s.l.Arbitrated(table)) {
		return false // Local.Arbitrated
	}
	return fresh || !s.peer.Scope.NeedsRecord(table)
}

// stateSend walks the records sent as states.
type stateSend struct {
	ss    StateStore
	fresh bool
	// relay: this node is a device; it covers only the numbers it holds
	// through a state (from a hub, so held by hubs); its own log goes as
	// writes, so that the writes hubs may lack still travel up by the log.
	relay   bool
	theirs  map[hlc.NodeID]store.Held
	isState func(table []byte) bool
	tables  []string
	ti      int    // table being read
	after   string // last id read in it
	page    []RecordState
	done    bool
}

// plan decides, once the peer's Have is known, whether the peer gets
// record states; if not, the numbers held here only through a state are
// taken out of what the cursors stream or declare.
func (snd *sender) plan(have *Have) error {
	s := snd.s
	caps := s.l.Capabilities()
	ss := caps.State
	if ss != nil {
		held, err := ss.StateHeld()
		if err != nil {
			return err
		}
		for _, c := range snd.cursors {
			c.state = held[c.origin]
		}
	}
	st, err := snd.chooseState(ss, have)
	if err != nil {
		return err
	}
	if st != nil {
		snd.st = st
		return nil
	}
	for _, c := range snd.cursors {
		if c.state.Max() > 0 {
			c.mine = subtract(c.mine, c.state)
		}
	}
	return nil
}

func (snd *sender) chooseState(ss StateStore, have *Have) (*stateSend, error) {
	s := snd.s
	if have.State == 0 || ss == nil || s.l.NoStateTransfer || s.peerAccept != nil || !s.l.scope().Covers(s.peer.Scope) {
		return nil, nil
	}
	if s.l.Capabilities().Log == nil {
		return nil, nil
	}
	theirs := snd.theirs
	fresh := true
	for o, h := range theirs {
		if o != s.peer.Node && h.Max() > 0 {
			fresh = false
			break
		}
	}
	if !fresh {
		// A receiver holding a record this node collected (deleted under
		// the horizon) would keep it: its delete is not sent. One that
		// holds every write under the horizon holds the delete.
		h, err := s.l.Store.GCHorizon()
		if err != nil {
			return nil, err
		}
		for _, d := range h {
			if d.Node != s.peer.Node && theirs[d.Node].Contig < d.Seq {
				return nil, nil
			}
		}
	}
	// What the peer lacks, of the origins that may have written its
	// tables (the others are declared empty to it without reading their
	// log: states would not spare anything there).
	lg := s.l.Capabilities().Log
	var missing uint64
	forced := false
	miss := make([][]store.SeqRange, len(snd.cursors))
	for i, c := range snd.cursors {
		miss[i] = c.theirs.Missing(c.mine)
		for _, r := range miss[i] {
			if !forced && intersect(c.state, r.Lo, r.Hi).Max() > 0 {
				forced = true
			}
		}
		if s.peer.Scope.All || c.state.Max() > 0 || lg.OriginMayWrite(c.origin, s.peer.Scope.lists) {
			for _, r := range miss[i] {
				missing += r.Hi - r.Lo + 1
			}
		} else {
			miss[i] = nil
		}
	}
	minWrites := uint64(StateMinWrites)
	if s.l.StateMinWrites != 0 {
		minWrites = uint64(max(s.l.StateMinWrites, 0))
	}
	relay := s.l.Role != "hub"
	if !forced && (relay || missing < minWrites) {
		return nil, nil
	}
	st := &stateSend{ss: ss, fresh: fresh, theirs: theirs, relay: relay}
	st.isState = func(t []byte) bool { return s.stateTable(string(t), fresh) }
	var tables []string
	if s.peer.Scope.All {
		all, err := ss.Tables()
		if err != nil {
			return nil, err
		}
		tables = all
	} else {
		for _, t := range s.peer.Scope.Tables {
			tables = append(tables, t.Table)
		}
	}
	excluded := false
	for _, t := range tables {
		if st.isState([]byte(t)) {
			st.tables = append(st.tables, t)
		} else if !IsSystemTable(t) && s.peer.Scope.lists([]byte(t)) {
			excluded = true
		}
	}
	if len(st.tables) == 0 {
		return nil, nil
	}
	if excluded {
		// The numbers held here only through states could be writes to a
		// table whose records do not go: they cannot be covered.
		for _, c := range snd.cursors {
			if c.state.Max() > 0 {
				return nil, nil
			}
		}
	}
	if !forced && s.l.StateMinWrites >= 0 {
		// Weigh: the stored bytes of the log entries the states replace
		// (read no further than the log's catch-up would), against the
		// records' stored bytes, read only until they outweigh the log.
		var logBytes int64
		for i, c := range snd.cursors {
			n, err := ss.LogBytes(c.origin, miss[i], st.isState, 0)
			if err != nil {
				return nil, err
			}
			logBytes += n
		}
		limit := logBytes * logWireNum / logWireDen
		var stateBytes int64
		w := *st
		for !w.done && stateBytes < limit {
			if err := w.load(s); err != nil {
				return nil, err
			}
			for _, r := range w.page {
				stateBytes += int64(len(r.Table) + len(r.ID) + len(r.State))
			}
			w.page = nil
		}
		s.l.Log.Debug("state transfer weighed", "peer", s.peer.Node, "missing", missing, "state_bytes", stateBytes, "log_bytes", logBytes)
		if stateBytes >= limit {
			return nil, nil
		}
	}
	s.l.Log.Debug("catching the peer up by record states", "peer", s.peer.Node, "missing", missing, "fresh", fresh, "forced", forced)
	return st, nil
}

// load reads the next page of records to send.
func (st *stateSend) load(s *Session) error {
	for len(st.page) == 0 && !st.done {
		if st.ti >= len(st.tables) {
			st.done = true
			return nil
		}
		table := st.tables[st.ti]
		raws, next, err := st.ss.ScanRaw(table, st.after, statePage)
		if err != nil {
			return err
		}
		if next == "" {
			st.ti++
			st.after = ""
		} else {
			st.after = next
		}
		decode := !st.fresh || s.peer.Scope.NeedsRecord(table) || s.peer.Scope.Projects(table)
		for _, r := range raws {
			state := r.Raw
			if decode {
				var rec crdt.Record
				if err := rec.UnmarshalBinary(r.Raw); err != nil {
					return fmt.Errorf("replication: record %s/%s: %w", table, r.ID, err)
				}
				if !st.fresh && !st.lacks(s.peer.Node, &rec) {
					continue
				}
				if !s.peer.Scope.Selects(table, r.ID, &rec, s.peerEval()) {
					continue
				}
				if s.peer.Scope.Projects(table) {
					if state, err = s.peer.Scope.ProjectRecord(table, &rec).MarshalBinary(); err != nil {
						return err
					}
				}
			}
			st.page = append(st.page, RecordState{Table: table, ID: r.ID, State: state})
		}
	}
	return nil
}

// lacks reports whether the peer may lack a write rec includes: one of
// an origin (not the peer's own) above what the peer holds of it
// contiguously.
func (st *stateSend) lacks(peer hlc.NodeID, rec *crdt.Record) bool {
	for _, d := range rec.Applied {
		if d.Node != peer && d.Seq > st.theirs[d.Node].Contig {
			return true
		}
	}
	return false
}

// nextChunk returns the next chunk of record states (at least one record,
// at most the chunk bound unless one record is larger).
func (st *stateSend) nextChunk(s *Session) (*Chunk, error) {
	limit := s.l.ChunkBytes
	if limit <= 0 || limit > MaxChunkBytes {
		limit = MaxChunkBytes
	}
	c := &Chunk{}
	size := 0
	for !st.done {
		if err := st.load(s); err != nil {
			return nil, err
		}
		for len(st.page) > 0 {
			r := st.page[0]
			n := len(r.Table) + len(r.ID) + len(r.State) + 16
			if len(c.Recs) > 0 && size+n > limit {
				return st.finish(s, c), nil
			}
			c.Recs = append(c.Recs, r)
			size += n
			st.page = st.page[1:]
		}
	}
	if len(c.Recs) == 0 {
		return s.snd.next() // nothing to send as a state: on to the log
	}
	return st.finish(s, c), nil
}

func (st *stateSend) finish(s *Session, c *Chunk) *Chunk {
	s.Stats.StateRecordsSent += uint64(len(c.Recs))
	return c
}

// fillState is cursor.fill during a state transfer: the log entries of
// state tables and the numbers held without a log entry become covered
// (the records sent include them, or they lie outside the peer's scope);
// the other tables' writes go as usual. Nothing beyond what this node held
// when the session started (what the records read since include) is
// covered: the cursor stops there.
func (c *cursor) fillState(s *Session) error {
	relay := s.snd.st.relay
	isState := s.snd.st.isState
	if relay {
		isState = func([]byte) bool { return false }
	}
	byLog := func(t []byte) bool { return s.peer.Scope.lists(t) && !isState(t) }
	top := c.mine.Max()
	// held covers numbers held here with no log entry (or, on the fast
	// path, none the peer's tables): a relay covers only those it holds
	// through a state and declares the others empty.
	held := func(lo, hi uint64) {
		if !relay {
			c.covered.Add(lo, hi)
			return
		}
		in := intersect(c.state, lo, hi)
		for _, r := range in.Missing(intersect(store.Held{Contig: hi}, lo, hi)) {
			c.empties.Add(r.Lo, r.Hi)
		}
		if in.Contig > 0 {
			c.covered.Add(1, in.Contig)
		}
		for _, r := range in.Ranges {
			c.covered.Add(r.Lo, r.Hi)
		}
	}
	if !c.drained {
		if ot := s.l.Capabilities().Log; !ot.OriginMayWrite(c.origin, byLog) {
			for _, g := range c.theirs.Missing(intersect(c.mine, c.after+1, top)) {
				held(g.Lo, g.Hi)
			}
			c.after = max(c.after, top)
			c.drained = true
			return nil
		}
	}
	ts := s.l.Capabilities().Log
	for len(c.buf) == 0 && !c.drained {
		n := 0
		prev := c.after
		refusedState := false
		want := func(t []byte) bool {
			if byLog(t) {
				return true
			}
			refusedState = isState(t)
			return false
		}
		gap := func(a, b uint64) {
			for _, g := range c.theirs.Missing(intersect(c.mine, a+1, b-1)) {
				held(g.Lo, g.Hi)
			}
		}
		handle := func(seq uint64, w *crdt.Write) error {
			if seq > top {
				c.drained = true
				return errStop
			}
			gap(prev, seq)
			prev = seq
			c.after = seq
			n++
			if !c.theirs.Contains(seq) {
				switch {
				case w == nil && refusedState:
					c.covered.Add(seq, seq)
				case w == nil:
					c.empties.Add(seq, seq)
				default:
					if err := c.take(s, w); err != nil {
						return err
					}
				}
			}
			if n >= cursorBatch {
				return errStop
			}
			return nil
		}
		err := ts.StreamTables(c.origin, c.after, want, handle)
		if err != nil && err != errStop {
			return err
		}
		if c.drained || n < cursorBatch {
			c.drained = true
			gap(prev, top+1)
		}
	}
	return nil
}

// receiveStates merges the records of a chunk (state transfer). A record
// this node does not take (AdmitRecord) or cannot merge yet (a stamp
// beyond the clock bound) makes it ignore the session's claims, so that
// nothing is held that it lacks; the next session sends them again.
func (s *Session) receiveStates(c *Chunk) error {
	ss := s.l.Capabilities().State
	if ss == nil || !s.tookState {
		return fmt.Errorf("%w: chunk %d: record states not asked for", ErrProtocol, c.No)
	}
	for _, e := range c.Covered {
		if hlc.NodeID(e.Origin) == s.l.Node {
			return fmt.Errorf("%w: chunk %d: covered numbers claim this node's origin", ErrProtocol, c.No)
		}
	}
	if len(c.Recs) == 0 {
		return nil
	}
	recs := make([]store.StateRecord, 0, len(c.Recs))
	for _, rs := range c.Recs {
		if !store.ValidTable(rs.Table) || !store.ValidID(rs.ID) {
			return fmt.Errorf("%w: record with invalid name %q/%q", ErrProtocol, rs.Table, rs.ID)
		}
		rec := &crdt.Record{}
		if err := rec.UnmarshalBinary(rs.State); err != nil {
			return fmt.Errorf("%w: record %s/%s: %v", ErrProtocol, rs.Table, rs.ID, err)
		}
		if IsSystemTable(rs.Table) || s.l.AdmitRecord != nil && !s.l.AdmitRecord(s.peer, rs.Table, rs.ID) {
			s.stateBroken = true
			continue
		}
		recs = append(recs, store.StateRecord{Table: rs.Table, ID: rs.ID, Rec: s.l.scope().ProjectRecord(rs.Table, rec)})
	}
	l := s.l
	changed, refused, err := ss.MergeStates(l.Clock, recs, func(b Batch, table, id string, merged *crdt.Record) error {
		if _, hidden := b.HiddenSkipped(table, id); l.scope().NeedsRecord(table) || hidden {
			l.markScope(b, table, id, merged, true, false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		s.stateBroken = true
		l.Log.Warn("record states beyond the clock bound not merged; their writes come again", "peer", s.peer.Node, "count", len(refused))
	}
	s.Stats.StateRecords += uint64(len(recs) - len(refused))
	if changed > 0 {
		l.Log.Debug("record states merged", "peer", s.peer.Node, "changed", changed)
	}
	return nil
}

// claimStates holds the numbers a chunk says the merged states include.
func (s *Session) claimStates(c *Chunk) error {
	if len(c.Covered) == 0 {
		return nil
	}
	if s.stateBroken {
		s.l.Log.Warn("numbers covered by record states not held: a state was not merged", "peer", s.peer.Node)
		return nil
	}
	ranges := map[hlc.NodeID][]store.SeqRange{}
	for _, e := range c.Covered {
		o := hlc.NodeID(e.Origin)
		if e.Contig > 0 {
			ranges[o] = append(ranges[o], store.SeqRange{Lo: 1, Hi: e.Contig})
		}
		for i := 0; i < len(e.Ranges); i += 2 {
			ranges[o] = append(ranges[o], store.SeqRange{Lo: e.Ranges[i], Hi: e.Ranges[i+1]})
		}
	}
	got, err := s.l.Capabilities().State.ClaimState(ranges)
	if err != nil {
		return err
	}
	for _, h := range got {
		s.Stats.StateClaimed += count(h)
	}
	return nil
}

// subtract returns h without the numbers o holds.
func subtract(h, o store.Held) store.Held {
	var out store.Held
	for _, m := range o.Missing(h) {
		out.Add(m.Lo, m.Hi)
	}
	return out
}
