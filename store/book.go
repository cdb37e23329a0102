package store

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Bookkeeping for sync and policy. Every type here is stored as msgpack
// (a map by field name, so fields can be added). Each kind has Batch
// methods (to join a write's batch through a hook) and Store methods that
// commit on their own, durably. Returned values are the caller's.

// PeerState is, per peer and per table, the last successful sync and what
// the peer acknowledged holding. Key p<peer:8><table>.
type PeerState struct {
	Peer     hlc.NodeID `codec:"-"`
	Table    string     `codec:"-"`
	LastSync int64      // Unix milliseconds of the last successful sync
	// Acked is, per origin, what the peer acknowledged holding.
	Acked map[hlc.NodeID]Held
}

type peerValue struct {
	LastSync int64
	Acked    map[uint64][]uint64
}

// ParkedWrite is a remote write whose stamp was beyond the clock bound.
// Key k<origin:8><seq:8>.
type ParkedWrite struct {
	Write   *crdt.Write
	Reason  string
	Time    int64 // Unix milliseconds when parked
	AheadMs int64 // how far ahead of local physical time it was
}

type parkedValue struct {
	Write   []byte // crdt.AppendWrite
	Reason  string
	Time    int64
	AheadMs int64
}

// SyncError is one entry of the sync-error log: a value a policy overrode
// or rejected. Key e<id:8>.
type SyncError struct {
	ID      uint64 // assigned by AppendSyncError
	Time    int64  // Unix milliseconds
	Table   string
	Record  string
	Fields  []string
	Losing  map[string][]byte // field -> losing value (crdt.Value)
	Winning map[string][]byte // field -> winning value
	Policy  string
	Nodes   []uint64 // nodes involved
	Detail  string
	Retried bool
	// Kind is "overridden" (a policy's ordinary outcome: lww or
	// client-wins kept another value) or "rejected" (a change undone:
	// server-wins, permissions); "" in entries stored by older versions
	// (the agent derives it from Policy).
	Kind string
}

// Conflict is a field awaiting a person's choice under the manual policy.
// Key c<table>\x00<id>\x00<field>. The policy layer fills it.
type Conflict struct {
	Table      string
	ID         string
	Field      string
	Candidates []crdt.Entry
	Base       []byte // the value both started from, if known
	Detected   int64  // Unix milliseconds
	Policy     string
}

// Tombstone records a deleted record: the stamp of the delete that won and
// the record's version vector at deletion, enough to decide later when
// every replica has acknowledged it. The store maintains tombstones itself
// on every write (put when a record becomes deleted, removed when it comes
// back); the policy layer deletes them once collected. Key t<table>\x00<id>.
type Tombstone struct {
	Table string     `codec:"-"`
	ID    string     `codec:"-"`
	TS    uint64     // hlc.Timestamp of the winning delete
	Node  uint64     // its origin
	VV    []crdt.Dot // record's Applied at deletion
}

func tombFrom(top crdt.Entry, applied crdt.VV) *Tombstone {
	return &Tombstone{TS: uint64(top.TS), Node: uint64(top.Origin), VV: applied.Clone()}
}

// --- Batch methods ---

// PutPeerState stores ps (Peer and Table name the key).
func (b *Batch) PutPeerState(ps *PeerState) {
	if b.err == nil && (ps.Peer == 0 || !ValidTable(ps.Table)) {
		b.err = fmt.Errorf("%w: peer state for peer %v table %q", ErrInvalid, ps.Peer, ps.Table)
	}
	v := peerValue{LastSync: ps.LastSync, Acked: map[uint64][]uint64{}}
	for o, h := range ps.Acked {
		v.Acked[uint64(o)] = h.flat()
	}
	b.setEncoded(peerKey(ps.Peer, ps.Table), &v)
}

// AppendSyncError appends e to the sync-error log with a new id, which it
// stores in e.ID and returns.
func (b *Batch) AppendSyncError(e *SyncError) uint64 {
	b.errSeq++
	e.ID = b.errSeq
	b.setEncoded(syncErrKey(e.ID), e)
	return e.ID
}

// PutConflict stores c (Table, ID and Field name the key).
func (b *Batch) PutConflict(c *Conflict) {
	if b.err == nil && (checkName(c.Table, c.ID) != nil || c.Field == "") {
		b.err = fmt.Errorf("%w: conflict %q/%q/%q", ErrInvalid, c.Table, c.ID, c.Field)
	}
	b.setEncoded(conflictKey(c.Table, c.ID, c.Field), c)
}

// DeleteConflict removes a conflict (no error if absent).
func (b *Batch) DeleteConflict(table, id, field string) { b.del(conflictKey(table, id, field)) }

// DeleteTombstone removes a tombstone (no error if absent).
func (b *Batch) DeleteTombstone(table, id string) { b.del(tombKey(table, id)) }

// --- Store methods: peers ---

// PutPeerState stores ps durably.
func (s *Store) PutPeerState(ps *PeerState) error {
	return s.commitBook(func(b *Batch) error { b.PutPeerState(ps); return b.err })
}

// GetPeerState returns the state for peer and table, or ErrNotFound.
func (s *Store) GetPeerState(peer hlc.NodeID, table string) (*PeerState, error) {
	k := peerKey(peer, table)
	var v peerValue
	if err := s.getValue(k, &v); err != nil {
		return nil, err
	}
	return peerFrom(k, &v)
}

func peerFrom(k []byte, v *peerValue) (*PeerState, error) {
	ps := &PeerState{Peer: hlc.NodeID(be(k[1:9])), Table: string(k[9:]), LastSync: v.LastSync, Acked: map[hlc.NodeID]Held{}}
	for o, f := range v.Acked {
		h, err := heldFromFlat(f)
		if err != nil {
			return nil, corrupt(k, err)
		}
		ps.Acked[hlc.NodeID(o)] = h
	}
	return ps, nil
}

// ListPeerStates returns every peer state of peer (0: of every peer), in
// key order.
func (s *Store) ListPeerStates(peer hlc.NodeID) ([]*PeerState, error) {
	prefix := []byte{pPeer}
	if peer != 0 {
		prefix = u64Key(nil, pPeer, uint64(peer))
	}
	var out []*PeerState
	err := s.scanPrefix(prefix, func(k, val []byte) error {
		if len(k) < 9 {
			return corruptf(k, "peer key of %d bytes", len(k))
		}
		var v peerValue
		if err := decodeValue(k, val, &v); err != nil {
			return err
		}
		ps, err := peerFrom(k, &v)
		if err == nil {
			out = append(out, ps)
		}
		return err
	})
	return out, err
}

// DeletePeerState removes the state for peer and table.
func (s *Store) DeletePeerState(peer hlc.NodeID, table string) error {
	return s.commitBook(func(b *Batch) error { b.del(peerKey(peer, table)); return b.err })
}

// --- parked writes ---

// markParked and unmarkParked keep parked and parkedBy; s.mu held (or
// the store not open yet).
func (s *Store) markParked(d crdt.Dot) {
	if !s.parked[d] {
		s.parked[d] = true
		s.parkedBy[d.Node]++
	}
}

func (s *Store) unmarkParked(d crdt.Dot) {
	if s.parked[d] {
		delete(s.parked, d)
		if s.parkedBy[d.Node]--; s.parkedBy[d.Node] <= 0 {
			delete(s.parkedBy, d.Node)
		}
	}
}

// dropHeldParked adds to b the removal of origin o's parked writes whose
// numbers got holds: a claim made them held without the write (the
// numbers covered by transferred record states, which include the writes;
// or an empty range), so they can never apply (a held number is a
// duplicate) and no peer offers them again. Kept, they would stay parked
// for good, count against the origin's bound, and a release would write
// their old values anew. pending are the writes parked earlier in b (none
// of them in s.parked). It returns the dots removed, to unmark once b is
// published. s.mu held.
func (s *Store) dropHeldParked(b *Batch, o hlc.NodeID, got Held, pending map[crdt.Dot]bool) []crdt.Dot {
	if s.parkedBy[o] == 0 && len(pending) == 0 {
		return nil
	}
	var out []crdt.Dot
	for _, m := range []map[crdt.Dot]bool{s.parked, pending} {
		for d := range m {
			if d.Node == o && got.Contains(d.Seq) {
				out = append(out, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	for _, d := range out {
		b.del(parkedKey(o, d.Seq))
	}
	return out
}

// dropHeldParkedAtOpen removes the parked writes whose numbers are held
// (versions before dropHeldParked kept them after a state claim); Open,
// once the holdings and the parked writes are loaded.
func (s *Store) dropHeldParkedAtOpen() error {
	var drop []crdt.Dot
	for d := range s.parked {
		if h := s.held[d.Node]; h != nil && h.Contains(d.Seq) {
			drop = append(drop, d)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	b := s.newBatch()
	for _, d := range drop {
		b.del(parkedKey(d.Node, d.Seq))
	}
	if err := s.commitNow(b); err != nil {
		return fmt.Errorf("store: drop held parked writes: %w", err)
	}
	for _, d := range drop {
		s.unmarkParked(d)
	}
	s.log.Info("store: dropped parked writes whose numbers are held (the record states claimed include them)", "count", len(drop))
	return nil
}

// ParkedCount returns the number of parked writes, and per origin, kept
// as counts (no scan).
func (s *Store) ParkedCount() (int, map[hlc.NodeID]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := make(map[hlc.NodeID]int, len(s.parkedBy))
	for o, n := range s.parkedBy {
		by[o] = n
	}
	return len(s.parked), by
}

// ListParkedPage returns up to limit parked writes after (origin, seq) in
// (origin, seq) order (0, 0: from the first), and whether more follow.
func (s *Store) ListParkedPage(afterOrigin hlc.NodeID, afterSeq uint64, limit int) ([]*ParkedWrite, bool, error) {
	start := []byte{pParked}
	if afterOrigin != 0 || afterSeq != 0 {
		start = append(parkedKey(afterOrigin, afterSeq), 0)
	}
	var out []*ParkedWrite
	more := false
	errFull := errors.New("page full")
	err := s.scanRange(start, []byte{pParked + 1}, func(k, val []byte) error {
		if len(out) == limit {
			more = true
			return errFull
		}
		p, err := decodeParked(k, val)
		if err == nil {
			out = append(out, p)
		}
		return err
	})
	if err != nil && err != errFull {
		return nil, false, err
	}
	return out, more, nil
}

// ListParked returns the parked writes in (origin, seq) order.
func (s *Store) ListParked() ([]*ParkedWrite, error) {
	var out []*ParkedWrite
	err := s.scanPrefix([]byte{pParked}, func(k, val []byte) error {
		p, err := decodeParked(k, val)
		if err == nil {
			out = append(out, p)
		}
		return err
	})
	return out, err
}

func decodeParked(k, val []byte) (*ParkedWrite, error) {
	var v parkedValue
	if err := decodeValue(k, val, &v); err != nil {
		return nil, err
	}
	w, err := crdt.DecodeWrite(v.Write, false)
	if err != nil {
		return nil, corrupt(k, err)
	}
	return &ParkedWrite{Write: w, Reason: v.Reason, Time: v.Time, AheadMs: v.AheadMs}, nil
}

// GetParked returns the parked write of origin/seq, or ErrNotFound.
func (s *Store) GetParked(origin hlc.NodeID, seq uint64) (*ParkedWrite, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	k := parkedKey(origin, seq)
	val, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: parked write %s", ErrNotFound, FormatKey(k))
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return decodeParked(k, val)
}

// ReleaseParked removes the parked write of origin/seq and returns it (to
// apply with ApplyRemote, typically with a clock that now accepts it).
// ErrNotFound if there is none.
func (s *Store) ReleaseParked(origin hlc.NodeID, seq uint64) (*ParkedWrite, error) {
	k := parkedKey(origin, seq)
	var p *ParkedWrite
	err := s.commitBook(func(b *Batch) error {
		val, c, err := s.get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("%w: parked write %s", ErrNotFound, FormatKey(k))
		}
		if err != nil {
			return err
		}
		p, err = decodeParked(k, val)
		c.Close()
		if err != nil {
			return err
		}
		b.del(k)
		return b.err
	})
	if err == nil {
		s.mu.Lock()
		s.unmarkParked(crdt.Dot{Node: origin, Seq: seq})
		s.mu.Unlock()
	}
	return p, err
}

// --- sync errors ---

// AppendSyncError appends e durably with a new id (stored in e.ID).
func (s *Store) AppendSyncError(e *SyncError) (uint64, error) {
	var id uint64
	err := s.commitBook(func(b *Batch) error { id = b.AppendSyncError(e); return b.err })
	return id, err
}

// GetSyncError returns the entry with id, or ErrNotFound.
func (s *Store) GetSyncError(id uint64) (*SyncError, error) {
	e := &SyncError{}
	if err := s.getValue(syncErrKey(id), e); err != nil {
		return nil, err
	}
	return e, nil
}

// ListSyncErrors returns up to limit entries with ids greater than after
// (limit <= 0: 100).
func (s *Store) ListSyncErrors(after uint64, limit int) ([]*SyncError, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []*SyncError
	errStop := errors.New("stop")
	err := s.scanRange(syncErrKey(after+1), []byte{pSyncErr + 1}, func(k, val []byte) error {
		if len(out) == limit {
			return errStop
		}
		e := &SyncError{}
		if err := decodeValue(k, val, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// MarkSyncErrorRetried sets the Retried flag of entry id.
func (s *Store) MarkSyncErrorRetried(id uint64) error {
	k := syncErrKey(id)
	return s.commitBook(func(b *Batch) error {
		e := &SyncError{}
		if err := s.getValue(k, e); err != nil {
			return err
		}
		e.Retried = true
		b.setEncoded(k, e)
		return b.err
	})
}

// --- conflicts ---

// PutConflict stores c durably.
func (s *Store) PutConflict(c *Conflict) error {
	return s.commitBook(func(b *Batch) error { b.PutConflict(c); return b.err })
}

// ListConflicts returns the conflicts of table ("" for all tables), in key
// order.
func (s *Store) ListConflicts(table string) ([]*Conflict, error) {
	prefix := []byte{pConflict}
	if table != "" {
		prefix = append(append(prefix, table...), 0)
	}
	var out []*Conflict
	err := s.scanPrefix(prefix, func(k, val []byte) error {
		c := &Conflict{}
		if err := decodeValue(k, val, c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// DeleteConflict removes a conflict (no error if absent).
func (s *Store) DeleteConflict(table, id, field string) error {
	return s.commitBook(func(b *Batch) error { b.DeleteConflict(table, id, field); return b.err })
}

// --- tombstones ---

// ListTombstones returns up to limit tombstones after the key (table,
// afterID) in key order; table "" lists every table. limit <= 0: 100.
func (s *Store) ListTombstones(table string, limit int) ([]*Tombstone, error) {
	if limit <= 0 {
		limit = 100
	}
	prefix := []byte{pTomb}
	if table != "" {
		prefix = append(append(prefix, table...), 0)
	}
	var out []*Tombstone
	errStop := errors.New("stop")
	err := s.scanPrefix(prefix, func(k, val []byte) error {
		if len(out) == limit {
			return errStop
		}
		t, id, ok := splitName(k[1:])
		if !ok {
			return corruptf(k, "malformed tombstone key")
		}
		ts := &Tombstone{}
		if err := decodeValue(k, val, ts); err != nil {
			return err
		}
		ts.Table, ts.ID = t, id
		out = append(out, ts)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// GetTombstone returns the tombstone of table/id, or ErrNotFound.
func (s *Store) GetTombstone(table, id string) (*Tombstone, error) {
	ts := &Tombstone{}
	if err := s.getValue(tombKey(table, id), ts); err != nil {
		return nil, err
	}
	ts.Table, ts.ID = table, id
	return ts, nil
}

// DeleteTombstone removes a tombstone (after collection).
func (s *Store) DeleteTombstone(table, id string) error {
	return s.commitBook(func(b *Batch) error { b.DeleteTombstone(table, id); return b.err })
}

// --- helpers ---

func (s *Store) getValue(k []byte, v any) error {
	if err := s.usable(); err != nil {
		return err
	}
	val, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, FormatKey(k))
	}
	if err != nil {
		return fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	defer c.Close()
	return decodeValue(k, val, v)
}

func (s *Store) scanPrefix(prefix []byte, fn func(k, v []byte) error) error {
	return s.scanRange(prefix, prefixEnd(prefix), fn)
}

// scanRange calls fn with every key in [lower, upper) and its value
// (opened; valid until fn returns), in order.
func (s *Store) scanRange(lower, upper []byte, fn func(k, v []byte) error) error {
	if err := s.usable(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		v, err := s.itValue(it, &buf)
		if err != nil {
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	return it.Error()
}

// scanKeys calls fn with every key starting with prefix, in order, without
// reading (or opening) the values.
func (s *Store) scanKeys(prefix []byte, fn func(k []byte) error) error {
	if err := s.usable(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()); err != nil {
			return err
		}
	}
	return it.Error()
}
