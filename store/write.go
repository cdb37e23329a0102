package store

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Batch is a write batch under construction. The store builds one for each
// local write, each ApplyRemote call and each bookkeeping call; hooks given
// to [Store.WriteWith] and [Store.ApplyRemoteWith] receive it so the policy
// layer can add its bookkeeping (conflicts, sync errors, tombstones, peer
// state) to the same atomic, durable commit. A Batch is only valid during
// the call that hands it out, and is not safe for concurrent use. Its
// methods record the first error and return it from Err; the owning call
// then fails and commits nothing.
type Batch struct {
	s         *Store
	b         *pebble.Batch
	hides     []hideOp
	collected map[string]bool // record keys removed by CollectRecord
	// recs are the records this batch writes (ApplyRemoteWith), by
	// table\x00id: CollectRecord leaves alone one still holding values
	// concurrent with its delete.
	recs   map[string]*crdt.Record
	qSeq   uint64 // queue ids allocated so far
	err    error
	errSeq uint64 // sync-error ids allocated so far
	now    func() time.Time
	buf    []byte
}

func (s *Store) newBatch() *Batch {
	return &Batch{s: s, b: s.db.NewBatch(), errSeq: s.errSeq, qSeq: s.qSeq, now: time.Now}
}

type hideOp struct {
	key     string // table\x00id
	hide    bool
	purge   bool
	skipped crdt.VV
}

// A hidden-record key whose state was removed holds 0xff, then the
// writes skipped for it (a flattened version vector, msgpack), if any.
func isPurgeMark(v []byte) bool { return len(v) >= 1 && v[0] == 0xff }

// Purge removes table/id's state from this replica, keeping it hidden:
// it is confirmed outside this replica's scope by a replica that holds
// the whole table. Its writes stay in the log and held. If it comes back
// into scope, it arrives whole again.
func (b *Batch) Purge(table, id string, skipped crdt.VV) {
	if b.err != nil {
		return
	}
	cur, _ := b.s.hiddenSkipped(table, id)
	for _, op := range b.hides {
		if op.key == table+"\x00"+id {
			cur = op.skipped
		}
	}
	vv := cur.Clone()
	vv.Join(skipped)
	b.del(recordKey(nil, table, id))
	b.s.rcache.drop(recordKey(nil, table, id))
	b.del(conflictIdxKey(recordKey(nil, table, id)))
	b.del(tombKey(table, id))
	b.del(mergedKey(table, id))
	b.deleteBases(table, id)
	k := recordKey(nil, table, id)
	k[0] = pHidden
	mark := []byte{0xff}
	if len(vv) > 0 {
		enc, err := encodeValue(nil, flatVV(vv))
		if err != nil {
			b.err = err
			return
		}
		mark = append(mark, enc...)
	}
	b.set(k, mark)
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id, hide: true, purge: true, skipped: vv})
}

// SetHidden hides table/id (it left this replica's scope: reads report
// ErrOutOfScope and Scan skips it, while its state is kept so that it
// merges correctly if it comes back) or shows it again. skipped, when
// hiding, is joined into the record's skipped writes (see
// Store.HiddenSkipped).
func (b *Batch) SetHidden(table, id string, hidden bool, skipped crdt.VV) {
	if b.err != nil {
		return
	}
	cur, was := b.s.hiddenSkipped(table, id)
	for _, op := range b.hides { // earlier in this batch
		if op.key == table+"\x00"+id {
			cur, was = op.skipped, op.hide
		}
	}
	if !hidden && !was {
		return
	}
	k := recordKey(nil, table, id)
	k[0] = pHidden
	if !hidden {
		b.del(k)
		b.hides = append(b.hides, hideOp{key: table + "\x00" + id})
		return
	}
	vv := cur.Clone()
	vv.Join(skipped)
	b.s.hidmu.RLock()
	wasPurged := b.s.purged[table+"\x00"+id]
	b.s.hidmu.RUnlock()
	for _, op := range b.hides {
		if op.key == table+"\x00"+id {
			wasPurged = op.purge
		}
	}
	if was && vv.Equal(cur) && !wasPurged {
		return
	}
	b.setEncoded(k, flatVV(vv))
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id, hide: true, skipped: vv})
}

// CollectRecord removes table/id's state with its tombstone, merge and
// hidden marks (a deleted record under the tombstone horizon; see
// Store.Collect), in this batch; not a record this batch writes that
// still holds values concurrent with its delete (see collectable).
func (b *Batch) CollectRecord(table, id string) {
	if b.err != nil {
		return
	}
	if rec, ok := b.recs[table+"\x00"+id]; ok && !collectable(rec) {
		return
	}
	rkey := recordKey(nil, table, id)
	b.del(rkey)
	b.del(conflictIdxKey(rkey))
	b.del(tombKey(table, id))
	b.del(mergedKey(table, id))
	b.deleteBases(table, id)
	xk := recordKey(nil, table, id)
	xk[0] = pHidden
	b.del(xk)
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id})
	b.s.rcache.drop(rkey)
	if b.collected == nil {
		b.collected = map[string]bool{}
	}
	b.collected[string(rkey)] = true
}

// Err returns the first error a method of b met.
func (b *Batch) Err() error { return b.err }

// set puts key = val in the batch, val sealed when the store is
// encrypted (straight into the batch's buffer: no copy, no allocation).
func (b *Batch) set(key, val []byte) {
	if b.err != nil {
		return
	}
	if c := b.s.ciph; c != nil {
		// Sealed in place in the batch, with the batch's copy of the key
		// as additional data: neither key nor val escapes (as with Set).
		op := b.b.SetDeferred(len(key), sealOverhead+len(val))
		copy(op.Key, key)
		copy(op.Value[1+nonceSize:], val)
		if b.err = c.sealInPlace(op.Value, op.Key, len(val)); b.err == nil {
			b.err = op.Finish()
		}
		return
	}
	b.err = b.b.Set(key, val, nil)
}

// setPlain puts key = val unsealed: only the values Open reads before it
// knows the key (m"magic", m"format", m"atrest"; see isBootstrap).
func (b *Batch) setPlain(key, val []byte) {
	if b.err == nil {
		b.err = b.b.Set(key, val, nil)
	}
}

func (b *Batch) del(key []byte) {
	if b.err == nil {
		b.err = b.b.Delete(key, nil)
	}
}

func (b *Batch) setEncoded(key []byte, v any) {
	if b.err != nil {
		return
	}
	val, err := encodeValue(b.buf[:0], v)
	if err != nil {
		b.err = err
		return
	}
	b.set(key, val)
	b.buf = val
}

func (b *Batch) close() {
	if b.b != nil {
		_ = b.b.Close()
		b.b = nil
	}
}

// submit hands b to Pebble. Without NoSync it uses ApplyNoSyncWait with
// Sync set: the batch is written to the WAL and applied to the memtable,
// and is visible to every read that starts after submit returns (Pebble's
// commit pipeline publishes batches in WAL order before returning; see
// the comment on DB.ApplyNoSyncWait: "the mutation is applied to the
// memtable and is visible"), but the fsync may still be in progress. The
// caller, once it has released the store's mutex, calls the returned wait
// to block until the fsync that covers the batch completes. Concurrent
// writers' batches thus share fsyncs (group commit).
//
// Any error or Pebble panic marks the store failed: a batch may already be
// visible while its fsync failed, so nothing more is trusted until a
// reopen replays exactly what is durable.
func (s *Store) submit(b *Batch) (wait func() error, err error) {
	if b.err != nil {
		return nil, b.err
	}
	if s.testHookBatch != nil {
		s.testHookBatch(b.b.Repr())
	}
	defer func() {
		if r := recover(); r != nil {
			wait, err = nil, s.failWith(fmt.Errorf("pebble: %v", r))
		}
	}()
	if s.opts.NoSync {
		if err := s.db.Apply(b.b, pebble.NoSync); err != nil {
			return nil, s.failWith(err)
		}
		s.noteWAL(len(b.b.Repr()))
		return func() error { return nil }, nil
	}
	if err := s.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
		return nil, s.failWith(err)
	}
	s.noteWAL(len(b.b.Repr()))
	pb := b.b
	return func() error {
		if err := pb.SyncWait(); err != nil {
			return s.failWith(fmt.Errorf("wal sync: %w", err))
		}
		return nil
	}, nil
}

// commitNow commits a batch synchronously (metadata at Open, migration)
// and closes it. Caller holds s.mu (or has exclusive access during Open).
func (s *Store) commitNow(bb *Batch) error {
	defer bb.close()
	wait, err := s.submit(bb)
	if err != nil {
		return err
	}
	return wait()
}

// publish makes what a batch handed to Pebble allocated or marked the
// store's in-memory state: sync-error and queue ids, hidden marks. Caller
// holds s.mu, after submit succeeded.
func (s *Store) publish(b *Batch) {
	s.errSeq = b.errSeq
	s.qSeq = b.qSeq
	s.applyHidden(b.hides)
}

// commitBook runs fill on a fresh batch under the write mutex and commits
// it durably. Used by the bookkeeping methods.
func (s *Store) commitBook(fill func(b *Batch) error) error {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	b := s.newBatch()
	defer b.close()
	if err := fill(b); err != nil {
		s.mu.Unlock()
		return err
	}
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.publish(b)
	s.mu.Unlock()
	return wait()
}

// WriteResult is what a local write did.
type WriteResult struct {
	// Write is the write as made and logged; it belongs to the caller.
	Write *crdt.Write
	// Record is the record's state after the write; it belongs to the
	// caller.
	Record *crdt.Record
	// Outcome is crdt's report of what the write superseded or stands
	// beside.
	Outcome crdt.Outcome
	// Feed is the write's number in the local change feed.
	Feed uint64
}

// Write makes a local write to table/id: it sets fields (any order; names
// must be unique and non-empty, values valid crdt.Values) or, with del,
// deletes the record. It stamps the write with clock.Now(), gives it the
// next local sequence number and the record's causal context, applies it,
// and commits in one batch the record, the change-log entry, this origin's
// holdings, the feed entry, the tombstone bookkeeping and the HLC
// high-water mark. Write returns once the batch is durable (fsynced;
// unless Options.NoSync), so an acknowledged write survives any crash.
// Concurrent writers share fsyncs.
//
// On error nothing was applied and the local sequence counter did not
// advance. Errors: ErrOutOfScope (the record is hidden: it left this
// replica's scope), ErrInvalid (bad names, fields), ErrCorrupt (the stored
// record does not decode), ErrClosed, ErrFailed (an I/O error; the store
// must be reopened). The store keeps references to the field values: do
// not modify them afterwards. The returned write is the caller's.
func (s *Store) Write(clock *hlc.Clock, table, id string, fields []crdt.FieldValue, del bool) (*crdt.Write, error) {
	r, err := s.WriteWith(clock, table, id, fields, del, nil)
	if err != nil {
		return nil, err
	}
	return r.Write, nil
}

// WriteWith is Write with a hook: hook, if not nil, is called under the
// store's write mutex after the write was applied to the record and before
// the batch is committed; keys it adds to b commit atomically with the
// write. An error from hook aborts the write (nothing is applied). hook
// must not call other Store methods (it would deadlock) and must not keep
// b.
func (s *Store) WriteWith(clock *hlc.Clock, table, id string, fields []crdt.FieldValue, del bool, hook func(b *Batch, r *WriteResult) error) (*WriteResult, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	fs, err := prepareFields(fields, del)
	if err != nil {
		return nil, err
	}
	return s.writeDecided(clock, table, id, func(*crdt.Record) ([]crdt.FieldValue, bool, bool) { return fs, del, true }, true, hook)
}

// WriteDecided is WriteWith whose write is decided under the write mutex
// from the record's current state: decide (which must not modify or keep
// rec, nor call Store methods) returns the fields, whether the write is a
// delete, and ok false to write nothing, in which case WriteDecided
// returns nil, nil and hook is not called. Nothing can change the record
// between decide and the write: the policy arbiter narrows its decisions
// with it.
func (s *Store) WriteDecided(clock *hlc.Clock, table, id string, decide func(rec *crdt.Record) (fields []crdt.FieldValue, del bool, ok bool), hook func(b *Batch, r *WriteResult) error) (*WriteResult, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	if decide == nil {
		return nil, fmt.Errorf("%w: no decide function", ErrInvalid)
	}
	return s.writeDecided(clock, table, id, decide, false, hook)
}

// prepareFields checks a local write's fields and returns them sorted, in
// a slice of their own (nil when empty).
func prepareFields(fields []crdt.FieldValue, del bool) ([]crdt.FieldValue, error) {
	if del && len(fields) > 0 {
		return nil, fmt.Errorf("%w: a delete sets no fields", ErrInvalid)
	}
	fs := append([]crdt.FieldValue(nil), fields...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	for _, f := range fs {
		if err := f.Value.Validate(); err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrInvalid, f.Name, err)
		}
	}
	if len(fs) == 0 {
		fs = nil
	}
	return fs, nil
}

// writeDecided makes the write decide returns; prepared: its fields have
// been through prepareFields already.
func (s *Store) writeDecided(clock *hlc.Clock, table, id string, decide func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool), prepared bool, hook func(b *Batch, r *WriteResult) error) (*WriteResult, error) {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if s.isHidden(table, id) {
		// Its state here may be stale or gone: a write would not carry
		// what it supersedes.
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: record %s/%q", ErrOutOfScope, table, id)
	}
	rkey := recordKey(nil, table, id)
	rec, _, err := s.readCached(rkey)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	fs, del, ok := decide(rec)
	if !ok {
		s.mu.Unlock()
		return nil, nil
	}
	if !prepared {
		if fs, err = prepareFields(fs, del); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	wasDeleted, wasConflict := rec.Deleted(), rec.HasConflict()
	seq := s.nextSeq
	w := &crdt.Write{
		Table: table, ID: id, Origin: s.node, Seq: seq, TS: clock.Now(),
		Ctx: rec.Context(), Delete: del, Fields: fs,
	}
	if err := w.Validate(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	self := s.heldOf(s.node)
	var horizon crdt.VV
	if err := s.settleCollected(rec, w, &self, &horizon); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	res := &WriteResult{Write: w, Record: rec}
	rec.Apply(w, &res.Outcome)
	if res.Outcome.NotReady {
		// Never acknowledge a write the record did not take.
		s.mu.Unlock()
		return nil, corruptf(rkey, "the record has not applied this node's previous write %d to it", w.Ctx.Get(s.node))
	}

	b := s.newBatch()
	defer b.close()
	self.Add(seq, seq)
	feed := s.feed + 1
	res.Feed = feed
	s.putApplied(b, rkey, rec, wasDeleted, w, feed)
	b.indexConflict(rkey, wasConflict, rec)
	b.setEncoded(originKey(s.node), self.flat())
	hw := max(s.hw, clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(hw)))
	if hook != nil && b.err == nil {
		if err := hook(b, res); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	// Committed to the memtable and WAL (not yet necessarily synced):
	// publish the new in-memory state. Later writers build on it, and their
	// batches follow this one in the WAL.
	s.nextSeq = seq + 1
	s.feed = feed
	s.hw = hw
	s.publish(b)
	s.rcache.put(rkey, rec.Clone()) // res.Record is the caller's
	s.publishHeld(map[hlc.NodeID]*Held{s.node: &self})
	s.mu.Unlock()

	if err := wait(); err != nil {
		return nil, err
	}
	raise(&s.durableSeq, seq)
	raise(&s.durableFeed, feed)
	// The caller owns the result: give it a copy of the write's slices the
	// record does not share.
	return res, nil
}

// putApplied adds to b the record, the log entry, the feed entry and the
// tombstone bookkeeping of an applied write.
func (s *Store) putApplied(b *Batch, rkey []byte, rec *crdt.Record, wasDeleted bool, w *crdt.Write, feed uint64) {
	if b.err != nil {
		return
	}
	val, err := rec.AppendBinary(nil)
	if err != nil {
		b.err = err
		return
	}
	b.set(rkey, val)
	lv, err := crdt.AppendWrite(nil, w)
	if err != nil {
		b.err = err
		return
	}
	b.noteLogTable(w.Origin, w.Table)
	b.set(logKey(nil, w.Origin, w.Seq), lv)
	b.set(feedKey(nil, feed), appendFeedValue(nil, uint64(w.Origin), w.Seq, w.Table, w.ID))
	tk := tombKey(w.Table, w.ID)
	if rec.Deleted() {
		top := rec.Exist[len(rec.Exist)-1]
		b.setEncoded(tk, tombFrom(top, rec.Applied))
	} else if wasDeleted {
		b.del(tk)
	}
}

func raise(a interface {
	Load() uint64
	CompareAndSwap(old, new uint64) bool
}, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// heldOf returns a private copy of origin's holdings. Caller holds s.mu.
func (s *Store) heldOf(origin hlc.NodeID) Held {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	if h := s.held[origin]; h != nil {
		return h.Clone()
	}
	return Held{}
}

func (s *Store) publishHeld(m map[hlc.NodeID]*Held) {
	s.hmu.Lock()
	for o, h := range m {
		s.held[o] = h
	}
	s.hmu.Unlock()
}

// readRecord reads and decodes a record; a missing record is an empty
// one (found false).
func (s *Store) readRecord(rkey []byte) (*crdt.Record, bool, error) {
	v, c, err := s.get(rkey)
	if errors.Is(err, pebble.ErrNotFound) {
		return &crdt.Record{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read %s: %w", FormatKey(rkey), err)
	}
	defer c.Close()
	rec, err := decodeRecord(rkey, v)
	if err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

func decodeRecord(key, v []byte) (rec *crdt.Record, err error) {
	defer func() {
		if r := recover(); r != nil {
			rec, err = nil, corruptf(key, "decode panic: %v", r)
		}
	}()
	rec = &crdt.Record{}
	if err := rec.UnmarshalBinary(v); err != nil {
		return nil, corrupt(key, err)
	}
	return rec, nil
}

func decodeLogEntry(key, v []byte) (w *crdt.Write, err error) {
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, corruptf(key, "decode panic: %v", r)
		}
	}()
	w, err = crdt.DecodeWrite(v, false)
	if err != nil {
		return nil, corrupt(key, err)
	}
	if len(key) != 17 || uint64(w.Origin) != be(key[1:9]) || w.Seq != be(key[9:]) {
		return nil, corruptf(key, "log entry holds write %v", w.Dot())
	}
	return w, nil
}

// Status says what ApplyRemote did with one write.
type Status uint8

// Statuses of remote writes.
const (
	// Applied: applied, logged, held.
	Applied Status = iota
	// Duplicate: already held here; nothing done.
	Duplicate
	// Parked: its stamp is beyond the clock's maximum offset; stored as a
	// parked write (ListParked), not applied, not held.
	Parked
	// Deferred: its origin's previous write to the record is missing here
	// (crdt.Record.Ready); not applied, not held. Send it again once the
	// gap is filled.
	Deferred
	// Known: its record already held it (merged whole by MergeRecord);
	// now logged and held, the record unchanged.
	Known
	// ParkRefused: it would be parked, but its origin already has
	// Options.MaxParkedPerOrigin parked writes; not stored, not held (its
	// origin keeps it and offers it again).
	ParkRefused
)

func (st Status) String() string {
	return [...]string{"applied", "duplicate", "parked", "deferred", "known", "park refused"}[st]
}

// Result is what ApplyRemote did. Status and Outcomes are parallel to the
// writes given.
type Result struct {
	Status []Status
	// Outcomes[i] is crdt's report for writes[i] when it was applied (the
	// candidates it superseded or stands beside, per field); zero
	// otherwise.
	Outcomes []crdt.Outcome
	// Applied counts applied writes; Parked and Deferred are indices into
	// writes.
	Applied  int
	Parked   []int
	Deferred []int
	// ParkRefused are indices into writes of the writes beyond the
	// per-origin bound on parked writes.
	ParkRefused []int
	// Records maps "table\x00id" to the state after the batch of every
	// record the batch changed; for hooks (the policy layer). Read-only:
	// the store keeps using them.
	Records map[string]*crdt.Record
}

// ApplyRemote applies writes received from peers, and marks as held the
// sequence ranges in empties (ranges a sender declared hold nothing this
// replica needs: elided or out of scope), in one atomic, durable batch.
//
// For each write in order: already held → Duplicate; its stamp beyond the
// clock's bound (clock.Update fails with *hlc.OffsetError) → Parked (kept
// under k<origin,seq>); its origin's previous write to the record missing
// → Deferred; else applied (later writes of the call see earlier ones),
// logged, held and added to the feed. The batch also updates the holdings
// of every origin touched and the HLC high-water mark. It is durable when
// ApplyRemote returns (unless Options.NoSync).
//
// Every write must pass crdt.Write.Validate and have valid table and id
// names, and every range must have 1 <= Lo <= Hi, or ApplyRemote returns
// ErrInvalid and does nothing. Other errors: ErrCorrupt (a stored record
// does not decode; nothing applied), ErrClosed, ErrFailed. The store keeps
// references to the writes' values; do not modify them afterwards.
func (s *Store) ApplyRemote(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange) (*Result, error) {
	return s.ApplyRemoteWith(clock, writes, empties, nil)
}

// ApplyRemoteWith is ApplyRemote with a hook, called under the store's
// write mutex before the commit with the batch and the result so far;
// keys it adds commit atomically with the writes. An error from hook
// aborts the call (nothing applied). hook must not call Store methods.
func (s *Store) ApplyRemoteWith(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange, hook func(b *Batch, r *Result) error) (*Result, error) {
	for _, w := range writes {
		if w == nil {
			return nil, fmt.Errorf("%w: nil write", ErrInvalid)
		}
		if err := checkName(w.Table, w.ID); err != nil {
			return nil, err
		}
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	for o, rs := range empties {
		if o == 0 {
			return nil, fmt.Errorf("%w: empty range of origin 0", ErrInvalid)
		}
		for _, r := range rs {
			if r.Lo == 0 || r.Hi < r.Lo {
				return nil, fmt.Errorf("%w: range %v", ErrInvalid, r)
			}
		}
	}
	res := &Result{
		Status:   make([]Status, len(writes)),
		Outcomes: make([]crdt.Outcome, len(writes)),
		Records:  map[string]*crdt.Record{},
	}

	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	b := s.newBatch()
	defer b.close()
	held := map[hlc.NodeID]*Held{}
	heldFor := func(o hlc.NodeID) *Held {
		h := held[o]
		if h == nil {
			c := s.heldOf(o)
			h = &c
			held[o] = h
		}
		return h
	}
	type recState struct {
		rec         *crdt.Record
		wasDeleted  bool
		wasConflict bool
		key         []byte
		last        *crdt.Write
	}
	recs := map[string]*recState{}
	var order []*recState
	feed := s.feed
	var ownMax uint64
	var keyBuf []byte
	var newParked, unparked []crdt.Dot
	batchParked := map[hlc.NodeID]int{} // newly parked in this batch, per origin
	pendingPark := map[crdt.Dot]bool{}  // parked earlier in this batch
	var horizon crdt.VV                 // read when first needed (settleCollected)
	for i, w := range writes {
		h := heldFor(w.Origin)
		if h.Contains(w.Seq) {
			res.Status[i] = Duplicate
			continue
		}
		if err := clock.Update(w.TS); err != nil {
			var oe *hlc.OffsetError
			if !errors.As(err, &oe) {
				s.mu.Unlock()
				return nil, err
			}
			if d := w.Dot(); !s.parked[d] && !pendingPark[d] {
				if max := s.opts.MaxParkedPerOrigin; max > 0 && s.parkedBy[w.Origin]+batchParked[w.Origin] >= max {
					res.Status[i] = ParkRefused
					res.ParkRefused = append(res.ParkRefused, i)
					continue
				}
				batchParked[w.Origin]++
				pendingPark[d] = true
			}
			res.Status[i] = Parked
			res.Parked = append(res.Parked, i)
			enc, encErr := crdt.AppendWrite(nil, w)
			if encErr != nil {
				s.mu.Unlock()
				return nil, encErr
			}
			newParked = append(newParked, w.Dot())
			b.setEncoded(parkedKey(w.Origin, w.Seq), &parkedValue{
				Write: enc, Reason: oe.Error(), Time: time.Now().UnixMilli(), AheadMs: oe.Ahead().Milliseconds(),
			})
			continue
		}
		keyBuf = recordKey(keyBuf[:0], w.Table, w.ID)
		rs := recs[string(keyBuf[1:])]
		if rs == nil {
			rec, _, err := s.readCached(keyBuf)
			if err != nil {
				s.mu.Unlock()
				return nil, err
			}
			rs = &recState{rec: rec, wasDeleted: rec.Deleted(), wasConflict: rec.HasConflict(), key: append([]byte(nil), keyBuf...)}
			recs[string(keyBuf[1:])] = rs
		}
		if err := s.settleCollected(rs.rec, w, h, &horizon); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		out := &res.Outcomes[i]
		rs.rec.Apply(w, out)
		switch {
		case out.NotReady:
			res.Status[i] = Deferred
			res.Deferred = append(res.Deferred, i)
			*out = crdt.Outcome{}
			continue
		case out.Duplicate:
			// The record already has it, from a whole-record merge
			// (MergeRecord), but the holdings do not: log it and hold it
			// (it can be forwarded now); the record does not change.
			res.Status[i] = Known
			*out = crdt.Outcome{}
		default:
			res.Status[i] = Applied
			res.Applied++
		}
		if s.parked[w.Dot()] {
			// It was parked earlier and is now within the clock bound.
			b.del(parkedKey(w.Origin, w.Seq))
			unparked = append(unparked, w.Dot())
		}
		h.Add(w.Seq, w.Seq)
		if w.Origin == s.node {
			ownMax = max(ownMax, w.Seq)
		}
		feed++
		if rs.last == nil {
			order = append(order, rs)
		}
		rs.last = w
		// Log and feed entries now; the record once, after the loop.
		lv, err := crdt.AppendWrite(b.buf[:0], w)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		b.noteLogTable(w.Origin, w.Table)
		b.set(logKey(keyBuf[:0], w.Origin, w.Seq), lv)
		b.buf = lv
		b.buf = appendFeedValue(b.buf[:0], uint64(w.Origin), w.Seq, w.Table, w.ID)
		b.set(feedKey(keyBuf[:0], feed), b.buf)
	}
	for _, rs := range order {
		val, err := rs.rec.AppendBinary(b.buf[:0])
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		b.set(rs.key, val)
		b.buf = val
		tk := tombKey(rs.last.Table, rs.last.ID)
		if rs.rec.Deleted() {
			b.setEncoded(tk, tombFrom(rs.rec.Exist[len(rs.rec.Exist)-1], rs.rec.Applied))
		} else if rs.wasDeleted {
			b.del(tk)
		}
		b.indexConflict(rs.key, rs.wasConflict, rs.rec)
		res.Records[string(rs.key[1:])] = rs.rec
		if b.recs == nil {
			b.recs = map[string]*crdt.Record{}
		}
		b.recs[string(rs.key[1:])] = rs.rec
	}
	// Empty ranges: hold them, and remember them (g keys) for Verify and
	// so that their holding is explained.
	origins := make([]hlc.NodeID, 0, len(empties))
	for o := range empties {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
	for _, o := range origins {
		h := heldFor(o)
		for _, r := range empties[o] {
			var want Held
			want.Add(r.Lo, r.Hi)
			for _, m := range h.Missing(want) {
				b.set(emptyKey(o, m.Lo), u64val(m.Hi))
				h.Add(m.Lo, m.Hi)
				if o == s.node {
					ownMax = max(ownMax, m.Hi)
				}
			}
		}
	}
	for o, h := range held {
		b.setEncoded(originKey(o), h.flat())
	}
	hw := max(s.hw, clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(hw)))
	if hook != nil && b.err == nil {
		if err := hook(b, res); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.feed = feed
	s.hw = hw
	s.publish(b)
	for _, rs := range order {
		if !b.collected[string(rs.key)] {
			s.rcache.put(rs.key, rs.rec) // res.Records are read-only for callers
		}
	}
	for _, d := range newParked {
		s.markParked(d)
	}
	for _, d := range unparked {
		s.unmarkParked(d)
	}
	if ownMax >= s.nextSeq {
		s.nextSeq = ownMax + 1
	}
	s.publishHeld(held)
	s.mu.Unlock()
	if err := wait(); err != nil {
		return nil, err
	}
	raise(&s.durableFeed, feed)
	if ownMax > 0 {
		raise(&s.durableSeq, ownMax)
	}
	return res, nil
}
