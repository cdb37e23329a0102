package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Migration of a plain store to sealed values: Open with
// Options.EncryptionKey of a store whose values are plain (or whose
// migration a crash interrupted) runs sealAll before anything else reads
// the store.
//
//  1. One batch sets m"format" to formatSealed and m"atrest" to migrating
//     with no cursor (nothing sealed yet).
//  2. Batches of at most migrateBatchValues values or migrateBatchBytes
//     bytes, in key order: each rewrites its values sealed and, in the
//     same batch, moves the cursor in m"atrest" to the first key it did
//     not seal. Values below the cursor are sealed, the others plain, so
//     a crash at any point leaves a store every value of which is known
//     to be sealed or plain; the next Open (with the key) resumes at the
//     cursor, and one without the key fails with ErrKeyRequired. The last
//     batch sets the state to compacting instead.
//  3. Flush, then compact the whole keyspace: the sstables and WAL files
//     holding the plaintext versions become obsolete and are deleted.
//     (Pebble recycles only WAL files written since it opened, which hold
//     sealed values only; the WAL files of the plain store are replayed,
//     flushed and deleted.) Then m"atrest" says sealed. A crash during the
//     compaction compacts again at the next Open.
//
// Progress goes to Options.Logger.

const (
	defaultMigrateBatchValues = 1024
	migrateBatchBytes         = 1 << 20
	migrateLogEvery           = 5 * time.Second
)

// sealAll migrates the store to sealed values from the state view says
// (plain, migrating or compacting). Open calls it with exclusive access.
func (s *Store) sealAll(view *sealedView) error {
	c := s.ciph
	dir := s.opts.Dir
	state, cursor, done := view.state, view.cursor, view.done
	if state == atRestPlain {
		at, err := c.atRestMeta(atRestMigrating, nil, 0)
		if err != nil {
			return err
		}
		b := s.newBatch()
		b.setPlain(metaKey(metaFormat), u64val(formatSealed))
		b.setPlain(metaKey(metaAtRest), at)
		if err := s.commitNow(b); err != nil {
			return fmt.Errorf("store: start encrypting %s: %w", dir, err)
		}
		s.log.Info("encrypting the store's values at rest: migration started (a plain store opened with a key: every value is rewritten sealed, then the store is compacted)", "dir", dir)
		state = atRestMigrating
		s.migrateHook("started", 0)
	} else if state == atRestMigrating {
		s.log.Info("encrypting the store's values at rest: resuming an interrupted migration", "dir", dir, "values_done", done, "at", FormatKey(cursor))
	}
	start, lastLog := time.Now(), time.Now()
	for state == atRestMigrating {
		next, n, err := s.sealBatch(cursor, done)
		if err != nil {
			return fmt.Errorf("store: encrypting %s at %s: %w", dir, FormatKey(cursor), err)
		}
		done += uint64(n)
		cursor = next
		if next == nil {
			state = atRestCompacting
		}
		if time.Since(lastLog) >= migrateLogEvery {
			s.log.Info("encrypting the store's values at rest", "values_done", done, "at", FormatKey(cursor))
			lastLog = time.Now()
		}
		s.migrateHook("batch", done)
	}
	s.log.Info("encrypting the store's values at rest: every value is sealed; compacting the store so that no file keeps plaintext", "values", done, "took", time.Since(start).Round(time.Millisecond))
	if err := s.compactAll(); err != nil {
		return fmt.Errorf("store: compact %s after encrypting it: %w", dir, err)
	}
	s.migrateHook("compacted", done)
	at, err := c.atRestMeta(atRestSealed, nil, 0)
	if err != nil {
		return err
	}
	b := s.newBatch()
	b.setPlain(metaKey(metaAtRest), at)
	if err := s.commitNow(b); err != nil {
		return fmt.Errorf("store: finish encrypting %s: %w", dir, err)
	}
	s.log.Info("encrypting the store's values at rest: done", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Store) migrateHook(stage string, done uint64) {
	if s.opts.testMigrate != nil {
		s.opts.testMigrate(stage, done)
	}
}

// sealBatch seals, in one durable batch, the values from cursor on (at
// most a batch's worth), with the new m"atrest" (done counts the values
// sealed before). next is the first key left plain, nil when none is.
func (s *Store) sealBatch(cursor []byte, done uint64) (next []byte, n int, err error) {
	limit := s.opts.migrateBatch
	if limit <= 0 {
		limit = defaultMigrateBatchValues
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: cursor})
	if err != nil {
		return nil, 0, err
	}
	b := s.newBatch()
	size := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if n == limit || size >= migrateBatchBytes {
			next = append([]byte(nil), k...)
			break
		}
		if isBootstrap(k) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			b.close()
			return nil, 0, err
		}
		b.set(k, v) // copied into the batch, sealed
		n++
		size += len(k) + len(v)
	}
	if err := it.Close(); err != nil {
		b.close()
		return nil, 0, err
	}
	state := uint8(atRestMigrating)
	if next == nil {
		state = atRestCompacting
	}
	at, err := s.ciph.atRestMeta(state, next, done+uint64(n))
	if err != nil {
		b.close()
		return nil, 0, err
	}
	b.setPlain(metaKey(metaAtRest), at)
	if err := s.commitNow(b); err != nil {
		return nil, 0, err
	}
	return next, n, nil
}

// compactAll flushes the memtable and compacts every key, so that the
// files holding superseded (plaintext) values become obsolete.
func (s *Store) compactAll() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble: %v", r)
		}
	}()
	if err := s.db.Flush(); err != nil {
		return err
	}
	return s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}

// verifyAtRest checks, for Verify, that an encrypted store says it is
// sealed and that every value but the bootstrap ones opens with its key;
// and that a plain store has no at-rest state.
func (s *Store) verifyAtRest(snap *pebble.Snapshot) error {
	view, err := readAtRest(snap, s.ciph)
	if err != nil {
		return err
	}
	if s.ciph == nil {
		return nil // readAtRest refuses an encrypted store without a key
	}
	if view.state != atRestSealed {
		return fmt.Errorf("%w: open store in at-rest state %d, not sealed", ErrCorrupt, view.state)
	}
	it, err := snap.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		if _, err := s.itValue(it, &buf); err != nil {
			return err
		}
	}
	return it.Error()
}
