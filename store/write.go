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
// write. An error or a panic from hook aborts the write (nothing is
// applied; a panic is returned as a *HookPanicError). hook reads through
// b (Batch.Get), must not call Store methods that write (they would
// deadlock) and must not keep b; see hook.go.
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
// from the record's current state: decide (a hook: it must not modify or
// keep rec, nor call Store methods that write) returns the fields,
// whether the write is a delete, and ok false to write nothing, in which
// case WriteDecided returns nil, nil and hook is not called. Nothing can
// change the record between decide and the write: the policy arbiter
// narrows its decisions with it.
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
	res, p, err := s.writeLocked(clock, table, id, decide, prepared, hook)
	if err != nil || res == nil {
		return nil, err
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	raise(&s.durableSeq, res.Write.Seq)
	raise(&s.durableFeed, res.Feed)
	// The caller owns the result: give it a copy of the write's slices the
	// record does not share.
	return res, nil
}

// writeLocked is writeDecided under s.mu, up to handing the batch to
// Pebble: the caller waits for its fsync once s.mu is released. A nil
// result and error: decide wrote nothing.
func (s *Store) writeLocked(clock *hlc.Clock, table, id string, decide func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool), prepared bool, hook func(b *Batch, r *WriteResult) error) (*WriteResult, *pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	if s.isHidden(table, id) {
		// Its state here may be stale or gone: a write would not carry
		// what it supersedes.
		return nil, nil, fmt.Errorf("%w: record %s/%q", ErrOutOfScope, table, id)
	}
	rkey := recordKey(nil, table, id)
	rec, found, err := s.readCached(rkey)
	if err != nil {
		return nil, nil, err
	}
	var collected crdt.VV // the context of the record's collected state
	if !found {
		if collected, _, err = s.collectedContext(table, id); err != nil {
			return nil, nil, err
		}
	}
	var fs []crdt.FieldValue
	var del, ok bool
	if err := runHook(func() error { fs, del, ok = decide(rec); return nil }); err != nil || !ok {
		return nil, nil, err
	}
	if !prepared {
		if fs, err = prepareFields(fs, del); err != nil {
			return nil, nil, err
		}
	}
	wasDeleted, wasConflict := rec.Deleted(), rec.HasConflict()
	seq := s.nextSeq
	w := &crdt.Write{
		Table: table, ID: id, Origin: s.node, Seq: seq, TS: clock.Now(),
		Ctx: rec.Context(), Delete: del, Fields: fs,
	}
	if collected != nil {
		// Written over no state after collection: what this replica had
		// seen of it (collected.go).
		w.Ctx = collected
	}
	if err := w.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	self := s.heldOf(s.node)
	var horizon crdt.VV
	if err := s.settleCollected(rec, w, &self, &horizon); err != nil {
		return nil, nil, err
	}
	res := &WriteResult{Write: w, Record: rec}
	rec.Apply(w, &res.Outcome)
	if res.Outcome.NotReady {
		// Never acknowledge a write the record did not take.
		return nil, nil, corruptf(rkey, "the record has not applied this node's previous write %d to it", w.Ctx.Get(s.node))
	}

	b := s.newBatch()
	self.Add(seq, seq)
	feed := s.feed + 1
	res.Feed = feed
	s.putApplied(b, rkey, rec, wasDeleted, w, feed)
	b.indexConflict(rkey, wasConflict, rec)
	b.indexFields(rkey, rec)
	b.setEncoded(originKey(s.node), self.flat())
	hw := max(s.hw, clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(hw)))
	if collected != nil {
		b.del(collectedKey(table, id))
	}
	b.wrote(table+"\x00"+id, rec)
	if hook != nil && b.err == nil {
		if err := runHook(func() error { return hook(b, res) }); err != nil {
			b.close()
			return nil, nil, err
		}
	}
	p, err := s.submitPublish(b)
	if err != nil {
		return nil, nil, err
	}
	// Committed to the memtable and WAL (not yet necessarily synced):
	// publish the new in-memory state. Later writers build on it, and their
	// batches follow this one in the WAL.
	s.nextSeq = seq + 1
	s.feed = feed
	s.hw = hw
	s.rcache.put(rkey, rec.Clone()) // res.Record is the caller's
	s.publishHeld(map[hlc.NodeID]*Held{s.node: &self})
	return res, p, nil
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
// keys it adds commit atomically with the writes. An error or a panic
// from hook aborts the call (nothing applied; a panic is returned as a
// *HookPanicError). hook reads through b (Batch.Get shows the records as
// this batch leaves them) and must not call Store methods that write (see
// hook.go).
func (s *Store) ApplyRemoteWith(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange, hook func(b *Batch, r *Result) error) (*Result, error) {
	if err := checkRemote(writes, empties); err != nil {
		return nil, err
	}
	res := &Result{
		Status:   make([]Status, len(writes)),
		Outcomes: make([]crdt.Outcome, len(writes)),
		Records:  map[string]*crdt.Record{},
	}
	a, p, err := s.applyRemoteLocked(clock, writes, empties, hook, res)
	if err != nil {
		return nil, err
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	raise(&s.durableFeed, a.feed)
	if a.ownMax > 0 {
		raise(&s.durableSeq, a.ownMax)
	}
	return res, nil
}

// checkRemote validates ApplyRemote's arguments.
func checkRemote(writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange) error {
	for _, w := range writes {
		if w == nil {
			return fmt.Errorf("%w: nil write", ErrInvalid)
		}
		if err := checkName(w.Table, w.ID); err != nil {
			return err
		}
		if err := w.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	for o, rs := range empties {
		if o == 0 {
			return fmt.Errorf("%w: empty range of origin 0", ErrInvalid)
		}
		for _, r := range rs {
			if r.Lo == 0 || r.Hi < r.Lo {
				return fmt.Errorf("%w: range %v", ErrInvalid, r)
			}
		}
	}
	return nil
}

// remoteApply is one ApplyRemote call's batch under construction; its
// methods run under s.mu.
type remoteApply struct {
	s     *Store
	clock *hlc.Clock
	b     *Batch
	res   *Result
	held  map[hlc.NodeID]*Held // holdings of the origins touched (private copies)
	recs  map[string]*recState // by table\x00id
	order []*recState          // the records written, in first-write order
	feed  uint64               // last feed number used
	// ownMax is the highest sequence number of this node's own origin
	// held by the batch.
	ownMax              uint64
	keyBuf              []byte
	newParked, unparked []crdt.Dot
	batchParked         map[hlc.NodeID]int // newly parked in this batch, per origin
	pendingPark         map[crdt.Dot]bool  // parked earlier in this batch
	horizon             crdt.VV            // read when first needed (settleCollected)
	hw                  hlc.Timestamp
}

// recState is a record a remote batch reads and writes.
type recState struct {
	rec         *crdt.Record
	wasDeleted  bool
	wasConflict bool
	key         []byte
	last        *crdt.Write
}

// applyRemoteLocked is ApplyRemoteWith under s.mu, up to handing the
// batch to Pebble: the caller waits for its fsync once s.mu is released.
func (s *Store) applyRemoteLocked(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange, hook func(b *Batch, r *Result) error, res *Result) (*remoteApply, *pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	a := &remoteApply{
		s: s, clock: clock, b: s.newBatch(), res: res,
		held: map[hlc.NodeID]*Held{}, recs: map[string]*recState{}, feed: s.feed,
		batchParked: map[hlc.NodeID]int{}, pendingPark: map[crdt.Dot]bool{},
	}
	p, err := a.build(writes, empties, hook)
	if err != nil {
		a.b.close()
		return nil, nil, err
	}
	return a, p, nil
}

// build fills the batch (writes, records, empty ranges, holdings, the
// high-water mark), runs the hook and hands the batch to Pebble, then
// publishes the new in-memory state.
func (a *remoteApply) build(writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange, hook func(b *Batch, r *Result) error) (*pending, error) {
	s, b := a.s, a.b
	for i, w := range writes {
		if err := a.write(i, w); err != nil {
			return nil, err
		}
	}
	if err := a.putRecords(); err != nil {
		return nil, err
	}
	a.holdEmpties(empties)
	for o, h := range a.held {
		b.setEncoded(originKey(o), h.flat())
	}
	a.hw = max(s.hw, a.clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(a.hw)))
	if hook != nil && b.err == nil {
		if err := runHook(func() error { return hook(b, a.res) }); err != nil {
			return nil, err
		}
	}
	wait, err := s.submit(b)
	if err != nil {
		return nil, err
	}
	s.publish(b)
	a.publish()
	return &pending{b: b, wait: wait}, nil
}

func (a *remoteApply) heldFor(o hlc.NodeID) *Held {
	h := a.held[o]
	if h == nil {
		c := a.s.heldOf(o)
		h = &c
		a.held[o] = h
	}
	return h
}

// write handles writes[i]: a duplicate, parked, deferred, or applied to
// its record, logged, held and added to the feed.
func (a *remoteApply) write(i int, w *crdt.Write) error {
	s, b, res := a.s, a.b, a.res
	h := a.heldFor(w.Origin)
	if h.Contains(w.Seq) {
		res.Status[i] = Duplicate
		return nil
	}
	if err := a.clock.Update(w.TS); err != nil {
		var oe *hlc.OffsetError
		if !errors.As(err, &oe) {
			return err
		}
		return a.park(i, w, oe)
	}
	a.keyBuf = recordKey(a.keyBuf[:0], w.Table, w.ID)
	rs := a.recs[string(a.keyBuf[1:])]
	if rs == nil {
		rec, _, err := s.readCached(a.keyBuf)
		if err != nil {
			return err
		}
		rs = &recState{rec: rec, wasDeleted: rec.Deleted(), wasConflict: rec.HasConflict(), key: append([]byte(nil), a.keyBuf...)}
		a.recs[string(a.keyBuf[1:])] = rs
	}
	if err := s.settleCollected(rs.rec, w, h, &a.horizon); err != nil {
		return err
	}
	out := &res.Outcomes[i]
	rs.rec.Apply(w, out)
	switch {
	case out.NotReady:
		res.Status[i] = Deferred
		res.Deferred = append(res.Deferred, i)
		*out = crdt.Outcome{}
		return nil
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
		a.unparked = append(a.unparked, w.Dot())
	}
	h.Add(w.Seq, w.Seq)
	if w.Origin == s.node {
		a.ownMax = max(a.ownMax, w.Seq)
	}
	a.feed++
	if rs.last == nil {
		a.order = append(a.order, rs)
	}
	rs.last = w
	// Log and feed entries now; the record once, after the loop.
	lv, err := crdt.AppendWrite(b.buf[:0], w)
	if err != nil {
		return err
	}
	b.noteLogTable(w.Origin, w.Table)
	b.set(logKey(a.keyBuf[:0], w.Origin, w.Seq), lv)
	b.buf = lv
	b.buf = appendFeedValue(b.buf[:0], uint64(w.Origin), w.Seq, w.Table, w.ID)
	b.set(feedKey(a.keyBuf[:0], a.feed), b.buf)
	return nil
}

// park stores writes[i], whose stamp is beyond the clock's bound, as a
// parked write, or refuses it past the origin's bound.
func (a *remoteApply) park(i int, w *crdt.Write, oe *hlc.OffsetError) error {
	s, res := a.s, a.res
	if d := w.Dot(); !s.parked[d] && !a.pendingPark[d] {
		if max := s.opts.MaxParkedPerOrigin; max > 0 && s.parkedBy[w.Origin]+a.batchParked[w.Origin] >= max {
			res.Status[i] = ParkRefused
			res.ParkRefused = append(res.ParkRefused, i)
			return nil
		}
		a.batchParked[w.Origin]++
		a.pendingPark[d] = true
	}
	res.Status[i] = Parked
	res.Parked = append(res.Parked, i)
	enc, err := crdt.AppendWrite(nil, w)
	if err != nil {
		return err
	}
	a.newParked = append(a.newParked, w.Dot())
	a.b.setEncoded(parkedKey(w.Origin, w.Seq), &parkedValue{
		Write: enc, Reason: oe.Error(), Time: time.Now().UnixMilli(), AheadMs: oe.Ahead().Milliseconds(),
	})
	return nil
}

// putRecords adds to the batch the state of every record written, with
// its tombstone and conflict-index entries.
func (a *remoteApply) putRecords() error {
	b := a.b
	for _, rs := range a.order {
		val, err := rs.rec.AppendBinary(b.buf[:0])
		if err != nil {
			return err
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
		b.indexFields(rs.key, rs.rec)
		a.res.Records[string(rs.key[1:])] = rs.rec
		b.wrote(string(rs.key[1:]), rs.rec)
	}
	return nil
}

// holdEmpties holds the empty ranges, and remembers them (g keys) for
// Verify and so that their holding is explained; parked writes they cover
// are dropped (dropHeldParked).
func (a *remoteApply) holdEmpties(empties map[hlc.NodeID][]SeqRange) {
	origins := make([]hlc.NodeID, 0, len(empties))
	for o := range empties {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
	for _, o := range origins {
		h := a.heldFor(o)
		var got Held
		for _, r := range empties[o] {
			var want Held
			want.Add(r.Lo, r.Hi)
			for _, m := range h.Missing(want) {
				a.b.set(emptyKey(o, m.Lo), u64val(m.Hi))
				h.Add(m.Lo, m.Hi)
				got.Add(m.Lo, m.Hi)
				if o == a.s.node {
					a.ownMax = max(a.ownMax, m.Hi)
				}
			}
		}
		if got.Max() > 0 {
			a.unparked = append(a.unparked, a.s.dropHeldParked(a.b, o, got, a.pendingPark)...)
		}
	}
}

// publish makes the batch handed to Pebble the store's in-memory state:
// feed, high-water mark, record cache, parked writes, own sequence,
// holdings.
func (a *remoteApply) publish() {
	s := a.s
	s.feed = a.feed
	s.hw = a.hw
	for _, rs := range a.order {
		if !a.b.collected[string(rs.key)] {
			s.rcache.put(rs.key, rs.rec) // res.Records are read-only for callers
		}
	}
	for _, d := range a.newParked {
		s.markParked(d)
	}
	for _, d := range a.unparked {
		s.unmarkParked(d)
	}
	if a.ownMax >= s.nextSeq {
		s.nextSeq = a.ownMax + 1
	}
	s.publishHeld(a.held)
}
