package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
)

// The conflict index (n<table>\x00<id> → empty) names every record with
// concurrent live candidates in a field or in its existence register
// (crdt.Record.HasConflict): the records a person may have to choose for.
// Listing conflicts and counting them (the API, the status page, every
// metrics scrape) reads the index instead of every record.
//
// Every path that writes a record's state keeps it in the same batch: an
// entry is set whenever the new state has a conflict and deleted when the
// previous state had one and the new one has none; removing a record's
// state (purge, tombstone collection) deletes it. A store opened without
// the index (created before it, or a build a crash interrupted) builds it
// from the records before it is used.
const pConflictIdx = 'n'

// metaConflictIdx marks the conflict index as complete.
const metaConflictIdx = "conflict-index"

func conflictIdxKey(rkey []byte) []byte {
	k := append([]byte(nil), rkey...)
	k[0] = pConflictIdx
	return k
}

// indexConflict keeps rkey's conflict index entry for a record whose
// previous state had a conflict (was) and whose new state is rec.
func (b *Batch) indexConflict(rkey []byte, was bool, rec *crdt.Record) {
	switch {
	case rec.HasConflict():
		b.set(conflictIdxKey(rkey), nil)
	case was:
		b.del(conflictIdxKey(rkey))
	}
}

// ConflictRef names a record of the conflict index.
type ConflictRef struct{ Table, ID string }

// ConflictedRecords returns, in key order, up to limit records of the
// conflict index after (table, id) (both "" for the start): the records
// with concurrent candidates (crdt.Record.HasConflict), hidden ones
// included. Which of them are conflicts to show depends on the table's
// policy.
func (s *Store) ConflictedRecords(afterTable, afterID string, limit int) ([]ConflictRef, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	lower := []byte{pConflictIdx}
	if afterTable != "" {
		lower = conflictIdxKey(recordKey(nil, afterTable, afterID))
		lower = append(lower, 0) // strictly after
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{pConflictIdx + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []ConflictRef
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		table, id, ok := splitName(it.Key()[1:])
		if !ok {
			return nil, corruptf(it.Key(), "malformed conflict index key")
		}
		out = append(out, ConflictRef{table, id})
	}
	return out, it.Error()
}

// buildConflictIndex builds the conflict index from the records if it is
// not marked complete: it clears the index, adds an entry per record with
// a conflict, and marks it complete in the last batch (a crash before
// that leaves it unmarked: the next open builds it again).
func (s *Store) buildConflictIndex() error {
	// Only the key's presence matters (its value is not read).
	if _, c, err := s.db.Get(metaKey(metaConflictIdx)); err == nil {
		c.Close()
		return nil
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("store: read %s: %w", FormatKey(metaKey(metaConflictIdx)), err)
	}
	b := s.newBatch()
	if err := b.b.DeleteRange([]byte{pConflictIdx}, []byte{pConflictIdx + 1}, nil); err != nil {
		b.close()
		return err
	}
	tables, err := s.Tables()
	if err != nil {
		b.close()
		return err
	}
	n, entries := 0, 0
	for _, t := range tables {
		after := ""
		for {
			page, next, err := s.Scan(t, after, 1000)
			if err != nil {
				b.close()
				return err
			}
			for _, e := range page {
				n++
				if e.Record.HasConflict() {
					b.set(conflictIdxKey(recordKey(nil, t, e.ID)), nil)
					entries++
				}
			}
			if b.err != nil {
				b.close()
				return b.err
			}
			if b.b.Len() > 4<<20 {
				if err := s.commitIndex(b); err != nil {
					return err
				}
				b = s.newBatch()
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	b.set(metaKey(metaConflictIdx), []byte{1})
	if b.err != nil {
		b.close()
		return b.err
	}
	if err := s.commitIndex(b); err != nil {
		return err
	}
	if n > 0 {
		s.opts.Logger.Info("store: conflict index built", "records", n, "with_conflicts", entries)
	}
	return nil
}

// commitIndex commits b synchronously and closes it (at Open: exclusive).
func (s *Store) commitIndex(b *Batch) error {
	defer b.close()
	wait, err := s.submit(b)
	if err != nil {
		return err
	}
	return wait()
}
