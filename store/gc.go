package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
)

// Tombstone collection.
//
// The horizon is a version vector every replica that could still send
// writes is known to hold (the sync layer's collector decides it and
// replicates it). A deleted record whose Applied vector the horizon covers
// can no longer receive a write concurrent with its delete, so its state
// is removed: Collect. Its writes stay in the log and held, so re-sent old
// writes are recognised as duplicates and never resurrect it.

const metaGC = "gc"

// GCHorizon returns the tombstone horizon (empty if none yet). The vector
// is the caller's.
func (s *Store) GCHorizon() (crdt.VV, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	k := metaKey(metaGC)
	v, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	defer c.Close()
	return decodeVV(k, v)
}

// RaiseGCHorizon joins h into the stored horizon (it never lowers) and
// returns the result.
func (s *Store) RaiseGCHorizon(h crdt.VV) (crdt.VV, error) {
	if !h.Valid() {
		return nil, fmt.Errorf("%w: malformed horizon %v", ErrInvalid, h)
	}
	var out crdt.VV
	err := s.commitBook(func(b *Batch) error {
		cur, err := s.GCHorizon()
		if err != nil {
			return err
		}
		out = cur.Clone()
		out.Join(h)
		if out.Equal(cur) {
			return nil
		}
		b.setEncoded(metaKey(metaGC), flatVV(out))
		return b.err
	})
	return out, err
}

// Collect removes, in batches of up to limit (<= 0: 1,000) per call, the
// state of deleted records whose Applied vector the stored horizon covers,
// with their tombstone, merge and hidden marks. It returns how many it
// removed. Call it until it returns fewer than limit.
func (s *Store) Collect(limit int) (int, error) {
	if limit <= 0 {
		limit = 1000
	}
	h, err := s.GCHorizon()
	if err != nil || len(h) == 0 {
		return 0, err
	}
	n := 0
	err = s.commitBook(func(b *Batch) error {
		err := s.scanKeys([]byte{pTomb}, func(k []byte) error {
			if n == limit {
				return errStopScan
			}
			table, id, ok := splitName(k[1:])
			if !ok {
				return corruptf(k, "malformed tombstone key")
			}
			rkey := recordKey(nil, table, id)
			rec, found, err := s.readRecord(rkey)
			if err != nil {
				return err
			}
			if found && (!collectable(rec) || !rec.Applied.LessEq(h)) {
				return nil
			}
			b.CollectRecord(table, id)
			n++
			return b.err
		})
		if errors.Is(err, errStopScan) {
			err = nil
		}
		return err
	})
	return n, err
}

var errStopScan = errors.New("stop")

// settleCollected prepares rec for w when w is not ready only because its
// origin's previous write to the record (the one w's context names) was
// collected here: the record's deleted state was removed under the
// horizon and re-created since by writes that had seen the delete, so it
// has applied no write of w's origin. That write is under the horizon
// and held (held: this replica's holdings of w's origin), so it was
// applied and dead; rec marks it applied (crdt.Record.Collected) and w
// applies, as on a replica that kept the tombstone. Without this, the
// origin's writes to the record were refused for ever: deferred on every
// replica that collected it, and left out of the origin's own state.
// horizon caches the stored horizon across calls of one batch (nil: not
// read yet). Caller holds s.mu.
func (s *Store) settleCollected(rec *crdt.Record, w *crdt.Write, held *Held, horizon *crdt.VV) error {
	if rec.Ready(w) || rec.Applied.Covers(w.Dot()) || rec.Applied.Get(w.Origin) != 0 {
		return nil
	}
	prev := w.Ctx.Get(w.Origin)
	if !held.Contains(prev) {
		return nil
	}
	if *horizon == nil {
		h, err := s.GCHorizon()
		if err != nil {
			return err
		}
		if h == nil {
			h = crdt.VV{}
		}
		*horizon = h
	}
	if prev <= horizon.Get(w.Origin) {
		rec.Collected(crdt.Dot{Node: w.Origin, Seq: prev})
	}
	return nil
}

// collectable reports whether a deleted record's state may be collected:
// it is deleted and nothing written concurrently with its delete is still
// live (every existence operation is a delete, every field candidate a
// delete marker). A value written concurrently with the delete and stamped
// before it leaves the record deleted in the last-writer-wins view, but it
// is not decided yet: listed as a conflict on manual tables, judged by the
// arbiter on client-wins and server-wins tables. Collecting the record
// would drop it without a trace (found by the fault harness, test/e2e
// TestFaults). Such a record is collected once a write that had seen
// everything (a resolution, or another delete) leaves only deletes.
func collectable(rec *crdt.Record) bool {
	if !rec.Deleted() {
		return false
	}
	for _, e := range rec.Exist {
		if !e.Delete {
			return false
		}
	}
	for _, name := range rec.FieldNames() {
		for _, c := range rec.Candidates(name) {
			if !c.Delete {
				return false
			}
		}
	}
	return true
}
