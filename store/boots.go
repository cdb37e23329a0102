package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Positions that outlive a restart, for readers that hand out positions
// in the feed (live queries' event ids, package query/live).
//
// Scope changes (scopewatch.go) are numbered: every batch that hides,
// shows, purges or collects records adds their count to m"scope-seq" in
// the same batch, so the count is exactly as durable as the changes.
//
// Each Open is a boot: it gets a random id and records where it started,
// the feed and scope positions it recovered (m"boots", the last maxBoots
// boots). What a boot published up to the next boot's start survived;
// what it published past it (not durable yet at a crash) did not, and
// those positions were numbered again. A position of a boot is thus
// still the same after later boots when it is at most the next boot's
// start.

// Boot is one Open of the store and the positions it started from.
type Boot struct {
	ID    uint64 // random, never 0
	Feed  uint64 // the feed position recovered (FeedHead at Open)
	Scope uint64 // the scope-change position recovered (ScopeHead at Open)
}

// maxBoots bounds the boots m"boots" keeps.
const maxBoots = 16

// loadBoots reads the scope-change count and the boots, and records this
// Open as a new boot, durably. Called last by Open (no batch with scope
// changes or feed entries is made before).
func (s *Store) loadBoots() error {
	s.mu.Lock() // index builds may commit meanwhile
	defer s.mu.Unlock()
	v, c, err := s.get(metaKey(metaScopeSeq))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		if len(v) != 8 {
			c.Close()
			return corruptf(metaKey(metaScopeSeq), "scope-change count of %d bytes", len(v))
		}
		s.scopeSeq = be(v)
		c.Close()
	}
	var flat []uint64
	v, c, err = s.get(metaKey(metaBoots))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		err := decodeValue(metaKey(metaBoots), v, &flat)
		c.Close()
		if err != nil {
			return err
		}
		if len(flat)%3 != 0 {
			return corruptf(metaKey(metaBoots), "%d numbers, not triples", len(flat))
		}
	}
	var boots []Boot
	for i := 0; i+2 < len(flat); i += 3 {
		boots = append(boots, Boot{ID: flat[i], Feed: flat[i+1], Scope: flat[i+2]})
	}
	var id uint64
	for id == 0 || bootKnown(boots, id) {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("store: boot id: %w", err)
		}
		id = binary.BigEndian.Uint64(b[:])
	}
	boots = append(boots, Boot{ID: id, Feed: s.feed, Scope: s.scopeSeq})
	if len(boots) > maxBoots {
		boots = boots[len(boots)-maxBoots:]
	}
	flat = flat[:0]
	for _, b := range boots {
		flat = append(flat, b.ID, b.Feed, b.Scope)
	}
	// Synced even with Options.NoSync: a boot lost in a crash would make
	// the positions of the boot before it unknown.
	b := s.newBatch()
	defer b.close()
	b.setEncoded(metaKey(metaBoots), flat)
	if b.err != nil {
		return b.err
	}
	if err := s.db.Apply(b.b, pebble.Sync); err != nil {
		return fmt.Errorf("store: record the boot: %w", err)
	}
	s.boots = boots
	return nil
}

func bootKnown(boots []Boot, id uint64) bool {
	for _, b := range boots {
		if b.ID == id {
			return true
		}
	}
	return false
}

// Boots returns the store's last boots, oldest first; the last is this
// Open's. The slice is the caller's.
func (s *Store) Boots() []Boot {
	return append([]Boot(nil), s.boots...)
}

// ScopeHead returns the number of scope changes published (hides, shows,
// purges and collections; a crash may take back those not durable yet).
func (s *Store) ScopeHead() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scopeSeq
}

// countScope adds b's scope changes to the durable count, in b. Caller
// holds s.mu; countedScope follows once b is handed to Pebble.
func (b *Batch) countScope() {
	if len(b.hides) > 0 {
		b.set(metaKey(metaScopeSeq), u64val(b.s.scopeSeq+uint64(len(b.hides))))
	}
}

// Visible returns FeedVisible and ScopeHead at once: a snapshot taken
// before the call shows no write with a later feed entry and no scope
// change with a later position.
func (s *Store) Visible() (feed, scope uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feed, s.scopeSeq
}

// countedScope counts b's scope changes, handed to Pebble. Caller holds
// s.mu.
func (s *Store) countedScope(b *Batch) {
	if n := len(b.hides); n > 0 {
		s.scopeSeq += uint64(n)
	}
}
