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
