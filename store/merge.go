package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// mergedKey is v<table>\x00<id>: the version vector of the record states
// merged whole into the record (MergeRecord); its Applied may cover writes
// the log does not hold.
func mergedKey(table, id string) []byte {
	k := recordKey(nil, table, id)
	k[0] = pMerged
	return k
}

func decodeVV(key, v []byte) (crdt.VV, error) {
	var flat []uint64
	if err := decodeValue(key, v, &flat); err != nil {
		return nil, err
	}
	if len(flat)%2 != 0 {
		return nil, corruptf(key, "odd version vector")
	}
	var vv crdt.VV
	for i := 0; i < len(flat); i += 2 {
		vv = append(vv, crdt.Dot{Node: hlc.NodeID(flat[i]), Seq: flat[i+1]})
	}
	if !vv.Valid() {
		return nil, corruptf(key, "malformed version vector")
	}
	return vv, nil
}

func flatVV(vv crdt.VV) []uint64 {
	out := make([]uint64, 0, 2*len(vv))
	for _, d := range vv {
		out = append(out, uint64(d.Node), d.Seq)
	}
	return out
}

// maxStamp returns the highest timestamp in a record state.
func maxStamp(r *crdt.Record) hlc.Timestamp {
	var m hlc.Timestamp
	see := func(es []crdt.Entry) {
		for _, e := range es {
			m = max(m, e.TS)
		}
	}
	see(r.Exist)
	see(r.Dels)
	for i := range r.Fields {
		see(r.Fields[i].Cands)
	}
	return m
}

// MergeRecord joins a whole record state received from a peer (a record
// entering this replica's scope, whose earlier writes this replica never
// received) into the stored record, in one durable batch with a feed entry
// (origin 0: a merge) and the record's merge mark. It returns whether the
// stored record changed. It changes no holdings and no log: the writes
// behind the state arrive later as Known (logged, held, record unchanged)
// or never, if the sender elided them.
//
// A state carrying a stamp beyond the clock's maximum offset is refused
// with the *hlc.OffsetError (nothing changes), so merging cannot bypass
// parking. Errors: ErrInvalid (bad names or a state failing crdt's
// Record.Check), ErrCorrupt, ErrClosed, ErrFailed.
func (s *Store) MergeRecord(clock *hlc.Clock, table, id string, in *crdt.Record) (bool, error) {
	return s.MergeRecordWith(clock, table, id, in, nil)
}

// MergeRecordWith is MergeRecord with a hook called under the write mutex
// with the batch and the merged record (when it changed); keys it adds
// commit atomically with the merge. An error or a panic from hook aborts
// the merge (see hook.go).
func (s *Store) MergeRecordWith(clock *hlc.Clock, table, id string, in *crdt.Record, hook func(b *Batch, rec *crdt.Record) error) (bool, error) {
	if err := checkName(table, id); err != nil {
		return false, err
	}
	if msg := in.Check(); msg != "" {
		return false, fmt.Errorf("%w: merged record %s/%s: %s", ErrInvalid, table, id, msg)
	}
	top := maxStamp(in)
	if err := clock.Update(top); err != nil {
		return false, err
	}
	changed, feed, p, err := s.mergeLocked(clock, table, id, in, hook)
	if err != nil || p == nil {
		return false, err
	}
	if err := p.done(); err != nil {
		return false, err
	}
	if changed {
		raise(&s.durableFeed, feed)
	}
	return changed, nil
}

// mergeLocked is MergeRecordWith under s.mu, up to handing the batch to
// Pebble (nil: nothing to commit): the caller waits for its fsync once
// s.mu is released. feed is the merge's feed entry when changed.
func (s *Store) mergeLocked(clock *hlc.Clock, table, id string, in *crdt.Record, hook func(b *Batch, rec *crdt.Record) error) (changed bool, feed uint64, _ *pending, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return false, 0, nil, err
	}
	rkey := recordKey(nil, table, id)
	rec, _, err := s.readCached(rkey)
	if err != nil {
		return false, 0, nil, err
	}
	before := rec.Digest()
	wasDeleted, wasConflict := rec.Deleted(), rec.HasConflict()
	rec.Merge(in)
	if rec.Digest() == before {
		s.rcache.put(rkey, rec)
		// Nothing new, but the hook may still decide (for example, show a
		// hidden record whose state is now known complete).
		if hook == nil {
			return false, 0, nil, nil
		}
		b := s.newBatch()
		if err := runHook(func() error { return hook(b, rec) }); err != nil || len(b.hides) == 0 {
			b.close()
			return false, 0, nil, err
		}
		p, err := s.submitPublish(b)
		return false, 0, p, err
	}
	mkey := mergedKey(table, id)
	var mvv crdt.VV
	if v, c, err := s.get(mkey); err == nil {
		mvv, err = decodeVV(mkey, v)
		c.Close()
		if err != nil {
			return false, 0, nil, err
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return false, 0, nil, fmt.Errorf("store: read %s: %w", FormatKey(mkey), err)
	}
	mvv.Join(in.Applied)

	b := s.newBatch()
	val, err := rec.AppendBinary(nil)
	if err != nil {
		b.close()
		return false, 0, nil, err
	}
	b.set(rkey, val)
	b.setEncoded(mkey, flatVV(mvv))
	feed = s.feed + 1
	b.setEncoded(feedKey(nil, feed), &feedValue{Table: table, ID: id})
	tk := tombKey(table, id)
	if rec.Deleted() {
		b.setEncoded(tk, tombFrom(rec.Exist[len(rec.Exist)-1], rec.Applied))
	} else if wasDeleted {
		b.del(tk)
	}
	b.indexConflict(rkey, wasConflict, rec)
	b.indexFields(rkey, rec)
	hw := max(s.hw, clock.HighWater())
	b.set(metaKey(metaHLC), u64val(uint64(hw)))
	b.wrote(table+"\x00"+id, rec)
	if hook != nil && b.err == nil {
		if err := runHook(func() error { return hook(b, rec) }); err != nil {
			b.close()
			return false, 0, nil, err
		}
	}
	p, err := s.submitPublish(b)
	if err != nil {
		return false, 0, nil, err
	}
	s.feed = feed
	s.hw = hw
	s.rcache.put(rkey, rec)
	return true, feed, p, nil
}
