package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// The origin-table index (j<origin:8><table> → empty) names, per origin,
// the tables its log entries here write. A hub streaming its log to a
// device whose scope lists tables asks it first (OriginMayWrite): an
// origin none of whose writes are in the device's tables is declared
// empty to it in one range instead of being read entry by entry (with 50
// devices each writing their own table and syncing at once, every session
// read every other device's writes to skip them).
//
// An entry is added in the batch of the first log entry of its (origin,
// table), and to the in-memory set before that batch is handed to Pebble,
// so that a reader never sees a log entry of a table the set lacks (a
// batch that then fails leaves a table too many: harmless). Entries are
// never removed. A store opened without the index (created before it, or
// a build a crash interrupted) builds it from the log before it is used.
const pOriginTable = 'j'

// metaOriginTables marks the origin-table index as complete.
const metaOriginTables = "origin-tables"

func originTableKey(origin hlc.NodeID, table string) []byte {
	k := make([]byte, 0, 9+len(table))
	k = append(k, pOriginTable)
	k = binary.BigEndian.AppendUint64(k, uint64(origin))
	return append(k, table...)
}

type originTables struct {
	mu sync.RWMutex
	m  map[hlc.NodeID]map[string]struct{}
}

// add records (origin, table) and reports whether it is new.
func (o *originTables) add(origin hlc.NodeID, table string) bool {
	o.mu.RLock()
	_, ok := o.m[origin][table]
	o.mu.RUnlock()
	if ok {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[origin][table]; ok {
		return false
	}
	if o.m == nil {
		o.m = map[hlc.NodeID]map[string]struct{}{}
	}
	if o.m[origin] == nil {
		o.m[origin] = map[string]struct{}{}
	}
	o.m[origin][table] = struct{}{}
	return true
}

// noteLogTable is called (under s.mu, before the batch is submitted) for
// every log entry b writes.
func (b *Batch) noteLogTable(origin hlc.NodeID, table string) {
	if b.s.otabs.add(origin, table) {
		b.set(originTableKey(origin, table), nil)
	}
}

// OriginMayWrite reports whether origin's log entries here may write a
// table want accepts: false means none of them does (want is called with
// each table origin wrote).
func (s *Store) OriginMayWrite(origin hlc.NodeID, want func(table []byte) bool) bool {
	s.otabs.mu.RLock()
	defer s.otabs.mu.RUnlock()
	for t := range s.otabs.m[origin] {
		if want([]byte(t)) {
			return true
		}
	}
	return false
}

// loadOriginTables reads the origin-table index, building it from the log
// first if it is not marked complete. At Open: exclusive access.
func (s *Store) loadOriginTables() error {
	if _, c, err := s.db.Get(metaKey(metaOriginTables)); err == nil {
		c.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("store: read %s: %w", FormatKey(metaKey(metaOriginTables)), err)
	} else if err := s.buildOriginTables(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pOriginTable}, UpperBound: []byte{pOriginTable + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 10 {
			return corruptf(k, "origin-table key of %d bytes", len(k))
		}
		s.otabs.add(hlc.NodeID(be(k[1:9])), string(k[9:]))
	}
	return it.Error()
}

// buildOriginTables reads the table of every log entry (not decoding the
// writes) and writes the index, marked complete in its last batch.
func (s *Store) buildOriginTables() error {
	seen := map[hlc.NodeID]map[string]bool{}
	n := 0
	for origin := range s.allHeld() {
		tabs := map[string]bool{}
		err := s.StreamTables(origin, 0, func(t []byte) bool {
			n++
			if !tabs[string(t)] {
				tabs[string(t)] = true
			}
			return false
		}, func(_ uint64, w *crdt.Write) error {
			if w != nil { // an entry whose table could not be read without decoding
				tabs[w.Table] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		seen[origin] = tabs
	}
	b := s.newBatch()
	for origin, tabs := range seen {
		for t := range tabs {
			b.set(originTableKey(origin, t), nil)
		}
	}
	b.set(metaKey(metaOriginTables), []byte{1})
	if b.err != nil {
		b.close()
		return b.err
	}
	if err := s.commitIndex(b); err != nil {
		return err
	}
	if n > 0 {
		s.opts.Logger.Info("store: origin-table index built", "log_entries", n, "origins", len(seen))
	}
	return nil
}
