package store

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/replicad/replicad/crdt"
)

// recCache keeps decoded states of recently written records, so that the
// write paths (local writes, remote batches, merges) need not read and
// decode them from Pebble again. It is used only under s.mu, and updated
// only after a batch was handed to Pebble, so it never holds a state the
// store does not. Entries are never handed out: readers get clones.
type recCache struct {
	maxBytes int
	bytes    int
	m        map[string]cached
	order    []string // keys in insertion order (a key appears once), for eviction
	head     int      // index of the oldest key in order

	vers tableVersions
}

// tableVersions counts, per table, the changes of its records' states
// that went through the record cache (every write and merge of a record
// puts its new state there once its batch is handed to Pebble, when the
// state is visible to readers). Readers need no lock.
type tableVersions struct {
	mu sync.RWMutex
	m  map[string]*atomic.Uint64
}

func (v *tableVersions) get(table string) uint64 {
	v.mu.RLock()
	c := v.m[table]
	v.mu.RUnlock()
	if c == nil {
		return 0
	}
	return c.Load()
}

// bump counts a change of the record under rkey (r<table>\x00<id>).
func (v *tableVersions) bump(rkey []byte) {
	if len(rkey) < 2 {
		return
	}
	i := bytes.IndexByte(rkey[1:], 0)
	if i < 0 {
		return
	}
	t := rkey[1 : 1+i]
	v.mu.RLock()
	c := v.m[string(t)]
	v.mu.RUnlock()
	if c == nil {
		v.mu.Lock()
		if c = v.m[string(t)]; c == nil {
			if v.m == nil {
				v.m = map[string]*atomic.Uint64{}
			}
			c = new(atomic.Uint64)
			v.m[string(t)] = c
		}
		v.mu.Unlock()
	}
	c.Store(versionClock.Add(1))
}

// versionClock makes table versions unique in the process: a counter
// never takes a value twice, even across stores (a store reopened after a
// failure starts its counters again).
var versionClock atomic.Uint64

// TableVersion is a counter that changes after every write or merge of a
// record of table is visible to readers, so that a caller can cache a
// view of a small table (a system table) and re-read it only when the
// counter moved: read the version, then the records; the view is current
// while the version is unchanged. Hiding and collecting records count
// too, but before their batch is visible (callers caching views of
// hidden or collected records must not rely on it). Counters start at 0
// when the store opens and never repeat a value in the process.
func (s *Store) TableVersion(table string) uint64 { return s.rcache.vers.get(table) }

type cached struct {
	rec  *crdt.Record
	size int
}

// defaultRecordCache is the approximate memory, in bytes, of the records
// kept decoded.
const defaultRecordCache = 64 << 20

func newRecCache(maxBytes int) *recCache {
	if maxBytes <= 0 {
		maxBytes = defaultRecordCache
	}
	return &recCache{maxBytes: maxBytes, m: map[string]cached{}}
}

// approxSize estimates the memory a decoded record takes.
func approxSize(r *crdt.Record) int {
	n := 128 + 16*(len(r.Applied)+len(r.ExCov)+len(r.DelCov)) + 64*(len(r.Exist)+len(r.Dels))
	for i := range r.Fields {
		f := &r.Fields[i]
		n += 80 + len(f.Name) + 16*len(f.Cov)
		for _, c := range f.Cands {
			n += 64 + len(c.Value)
		}
	}
	return n
}

// take removes and returns the state of key: the caller owns it and puts
// it back (or a newer one) once its batch is handed to Pebble.
func (c *recCache) take(key []byte) (*crdt.Record, bool) {
	e, ok := c.m[string(key)]
	if !ok || e.rec == nil {
		return nil, false
	}
	c.m[string(key)] = cached{} // keep its place in order; no state
	c.bytes -= e.size
	return e.rec, true
}

// put stores rec (which the cache now owns) under key, evicting the
// oldest keys beyond the byte budget.
func (c *recCache) put(key []byte, rec *crdt.Record) {
	c.vers.bump(key)
	k := string(key)
	size := approxSize(rec)
	if size > c.maxBytes/4 {
		c.drop(key)
		return
	}
	old, ok := c.m[k]
	if ok {
		c.bytes -= old.size
	} else {
		c.order = append(c.order, k)
	}
	c.m[k] = cached{rec: rec, size: size}
	c.bytes += size
	for c.bytes > c.maxBytes && c.head < len(c.order) {
		ok := c.order[c.head]
		c.head++
		if e, found := c.m[ok]; found {
			c.bytes -= e.size
			delete(c.m, ok)
		}
	}
	if c.head > len(c.order)/2 && c.head > 1024 {
		c.order = append([]string(nil), c.order[c.head:]...)
		c.head = 0
	}
}

func (c *recCache) drop(key []byte) {
	c.vers.bump(key)
	if e, ok := c.m[string(key)]; ok {
		c.bytes -= e.size
		delete(c.m, string(key))
	}
}

// readCached returns the state of rkey for a writer holding s.mu: from the
// cache (taking it out) or from Pebble.
func (s *Store) readCached(rkey []byte) (*crdt.Record, bool, error) {
	if r, ok := s.rcache.take(rkey); ok {
		return r, true, nil
	}
	return s.readRecord(rkey)
}

// RecordCacheBytes is the approximate memory of the decoded records the
// write paths keep (bounded by Options.RecordCache).
func (s *Store) RecordCacheBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.rcache.bytes)
}
