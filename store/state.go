package store

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// State transfer: a replica that catches up by receiving records' states
// instead of every write behind them (replication's state transfer).
// MergeStates merges many whole states in one batch; ClaimState then
// marks the writes those states include as held, with no log entry: the
// s<origin><lo> keys remember them, so that Verify explains the holdings
// and a sync sender knows it cannot stream them (it has no log entry) and
// must not declare them empty either.

// pState prefixes the ranges held through a transferred state:
// s<origin:8><lo:8> → hi (uint64 BE), like the empty ranges' g keys.
const pState = 's'

func stateKey(origin hlc.NodeID, lo uint64) []byte {
	return u64u64Key(nil, pState, uint64(origin), lo)
}

// StateRecord is one record's whole state to merge (MergeStates).
type StateRecord struct {
	Table, ID string
	Rec       *crdt.Record
}

// MergeStates joins whole record states received from a peer into the
// stored records, as MergeRecord does for one, in one durable batch: a
// feed entry (origin 0) and the merge mark (v key) of every record that
// changed. A state that fails crdt's Record.Check or has an invalid name
// is ErrInvalid (nothing merged). A state carrying a stamp beyond the
// clock's maximum offset is not merged: its index is returned in refused
// (the others are). hook, if set, is called under the write mutex for
// every record in recs with the batch and the record's merged state
// (changed or not); what it does commits with the merge, and an error or
// a panic from it aborts the merge (hook.go). It returns how many records
// changed.
func (s *Store) MergeStates(clock *hlc.Clock, recs []StateRecord, hook func(b ScopeBatch, table, id string, rec *crdt.Record) error) (changed int, refused []int, err error) {
	for _, r := range recs {
		if err := checkName(r.Table, r.ID); err != nil {
			return 0, nil, err
		}
		if r.Rec == nil {
			return 0, nil, fmt.Errorf("%w: nil state of %s/%s", ErrInvalid, r.Table, r.ID)
		}
		if msg := r.Rec.Check(); msg != "" {
			return 0, nil, fmt.Errorf("%w: merged record %s/%s: %s", ErrInvalid, r.Table, r.ID, msg)
		}
	}
	ok := make([]bool, len(recs))
	for i, r := range recs {
		if err := clock.Update(maxStamp(r.Rec)); err != nil {
			var oe *hlc.OffsetError
			if !errors.As(err, &oe) {
				return 0, nil, err
			}
			refused = append(refused, i)
			continue
		}
		ok[i] = true
	}
	changed, feed, p, err := s.mergeStatesLocked(clock, recs, ok, hook)
	if err != nil || p == nil {
		return 0, refused, err
	}
	if err := p.done(); err != nil {
		return 0, refused, err
	}
	raise(&s.durableFeed, feed)
	return changed, refused, nil
}

// mergeStatesLocked is MergeStates under s.mu (released by defer, hooks
// run as hook.go says), up to handing the batch to Pebble.
func (s *Store) mergeStatesLocked(clock *hlc.Clock, recs []StateRecord, ok []bool, hook func(b ScopeBatch, table, id string, rec *crdt.Record) error) (changed int, feed uint64, _ *pending, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, 0, nil, err
	}
	b := s.newBatch()
	type done struct {
		key []byte
		rec *crdt.Record
	}
	var put []done
	feed = s.feed
	seen := map[string]*crdt.Record{} // a record named twice merges into one state
	fail := func(err error) (int, uint64, *pending, error) {
		b.close()
		for _, d := range put {
			s.rcache.put(d.key, d.rec) // taken by readCached, unchanged in the store
		}
		return 0, 0, nil, err
	}
	for i, r := range recs {
		if !ok[i] {
			continue
		}
		rkey := recordKey(nil, r.Table, r.ID)
		rec, dup := seen[string(rkey)]
		if !dup {
			var err error
			if rec, _, err = s.readCached(rkey); err != nil {
				return fail(err)
			}
			seen[string(rkey)] = rec
		}
		before := rec.Digest()
		wasDeleted, wasConflict := rec.Deleted(), rec.HasConflict()
		if !dup {
			put = append(put, done{rkey, rec.Clone()})
		}
		rec.Merge(r.Rec)
		if rec.Digest() != before {
			changed++
			mkey := mergedKey(r.Table, r.ID)
			var mvv crdt.VV
			if v, c, err := s.get(mkey); err == nil {
				mvv, err = decodeVV(mkey, v)
				c.Close()
				if err != nil {
					return fail(err)
				}
			} else if !errors.Is(err, pebble.ErrNotFound) {
				return fail(fmt.Errorf("store: read %s: %w", FormatKey(mkey), err))
			}
			mvv.Join(r.Rec.Applied)
			val, err := rec.AppendBinary(nil)
			if err != nil {
				return fail(err)
			}
			b.set(rkey, val)
			b.setEncoded(mkey, flatVV(mvv))
			feed++
			b.setEncoded(feedKey(nil, feed), &feedValue{Table: r.Table, ID: r.ID})
			tk := tombKey(r.Table, r.ID)
			if rec.Deleted() {
				b.setEncoded(tk, tombFrom(rec.Exist[len(rec.Exist)-1], rec.Applied))
			} else if wasDeleted {
				b.del(tk)
			}
			b.indexConflict(rkey, wasConflict, rec)
			b.wrote(r.Table+"\x00"+r.ID, rec)
		}
		if hook != nil && b.err == nil {
			if err := runHook(func() error { return hook(b, r.Table, r.ID, rec) }); err != nil {
				return fail(err)
			}
		}
	}
	hw := max(s.hw, clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(hw)))
	p, err := s.submitPublish(b)
	if err != nil {
		for _, d := range put {
			s.rcache.put(d.key, d.rec)
		}
		return 0, 0, nil, err
	}
	s.feed = feed
	s.hw = hw
	for k, rec := range seen {
		s.rcache.put([]byte(k), rec)
	}
	return changed, feed, p, nil
}

// ClaimState marks as held, with no log entry, the sequence numbers in
// ranges: writes a peer's transferred record states include (MergeStates
// merged them first). Only the numbers not already held are claimed; they
// are remembered under s keys. Parked writes among them are dropped: the
// states include them (dropHeldParked). It returns, per origin, what it newly
// holds. This node's own origin is ErrInvalid (it holds all its writes),
// as is a range with Lo 0 or Hi < Lo.
func (s *Store) ClaimState(ranges map[hlc.NodeID][]SeqRange) (map[hlc.NodeID]Held, error) {
	origins := make([]hlc.NodeID, 0, len(ranges))
	for o, rs := range ranges {
		if o == 0 || o == s.node {
			return nil, fmt.Errorf("%w: state claim of origin %s", ErrInvalid, o)
		}
		for _, r := range rs {
			if r.Lo == 0 || r.Hi < r.Lo {
				return nil, fmt.Errorf("%w: range %v", ErrInvalid, r)
			}
		}
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
	out := map[hlc.NodeID]Held{}
	p, err := s.claimStateLocked(origins, ranges, out)
	if err != nil || p == nil {
		return out, err
	}
	return out, p.done()
}

// claimStateLocked is ClaimState under s.mu (released by defer), up to
// handing the batch to Pebble (nil: nothing to claim).
func (s *Store) claimStateLocked(origins []hlc.NodeID, ranges map[hlc.NodeID][]SeqRange, out map[hlc.NodeID]Held) (*pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	b := s.newBatch()
	held := map[hlc.NodeID]*Held{}
	var unparked []crdt.Dot
	for _, o := range origins {
		h := s.heldOf(o)
		var got Held
		for _, r := range ranges[o] {
			var want Held
			want.Add(r.Lo, r.Hi)
			for _, m := range h.Missing(want) {
				b.set(stateKey(o, m.Lo), u64val(m.Hi))
				h.Add(m.Lo, m.Hi)
				got.Add(m.Lo, m.Hi)
			}
		}
		if got.Max() > 0 {
			held[o] = &h
			out[o] = got
			b.setEncoded(originKey(o), h.flat())
			unparked = append(unparked, s.dropHeldParked(b, o, got, nil)...)
		}
	}
	if len(held) == 0 {
		b.close()
		return nil, nil
	}
	p, err := s.submitPublish(b)
	if err != nil {
		return nil, err
	}
	s.publishHeld(held)
	for _, d := range unparked {
		s.unmarkParked(d)
	}
	return p, nil
}

// StateHeld returns, per origin, the sequence numbers this replica holds
// through a transferred state (ClaimState): held, with no log entry, so
// that Stream does not yield them and a sender must neither stream them
// nor declare them empty.
func (s *Store) StateHeld() (map[hlc.NodeID]Held, error) {
	out := map[hlc.NodeID]Held{}
	err := s.scanPrefix([]byte{pState}, func(k, v []byte) error {
		if len(k) != 17 || len(v) != 8 || be(v) < be(k[9:]) {
			return corruptf(k, "malformed state range")
		}
		o := hlc.NodeID(be(k[1:9]))
		h := out[o]
		h.Add(be(k[9:]), be(v))
		out[o] = h
		return nil
	})
	return out, err
}

// LogBytes returns the stored size of origin's log entries within ranges
// whose table want accepts (nil: every one), without decoding them, and
// stops once the sum passes limit (limit <= 0: no limit). A sync sender
// weighs catching a peer up by the log against sending record states.
func (s *Store) LogBytes(origin hlc.NodeID, ranges []SeqRange, want func(table []byte) bool, limit int64) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	var n int64
	var buf []byte
	for _, r := range ranges {
		lower, upper := logBounds(origin, r.Lo, r.Hi)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return n, err
		}
		for it.First(); it.Valid(); it.Next() {
			v, err := s.itValue(it, &buf)
			if err != nil {
				it.Close()
				return n, err
			}
			if want != nil {
				if t, ok := crdt.WriteTable(v); ok && !want(t) {
					continue
				}
			}
			n += int64(len(v))
			if limit > 0 && n > limit {
				it.Close()
				return n, nil
			}
		}
		if err := it.Close(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// RawRecord is one record as ScanRaw returns it: its stored encoding
// (crdt.Record.AppendBinary), which crdt's Record.UnmarshalBinary reads.
type RawRecord struct {
	ID  string
	Raw []byte
}

// ScanRaw is Scan without decoding: up to limit records of table after
// after, as stored (hidden records skipped), and the id to pass as after
// for the next page ("" when there are no more). A sender of record
// states sends most of them as they are.
func (s *Store) ScanRaw(table, after string, limit int) ([]RawRecord, string, error) {
	var out []RawRecord
	next, err := s.scanPage(table, after, limit, func(_ []byte, id string, v []byte) error {
		out = append(out, RawRecord{ID: id, Raw: append([]byte(nil), v...)})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
