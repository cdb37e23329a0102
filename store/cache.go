package store

import "github.com/replicad/replicad/crdt"

// recCache keeps decoded states of recently written records, so that the
// write paths (local writes, remote batches, merges) need not read and
// decode them from Pebble again. It is used only under s.mu, and updated
// only after a batch was handed to Pebble, so it never holds a state the
// store does not. Entries are never handed out: readers get clones.
type recCache struct {
	max    int
	m      map[string]*crdt.Record
	ringed map[string]struct{} // keys in order
	order  []string            // ring of distinct keys, for eviction
	next   int
}

// defaultRecordCache is the number of records kept decoded.
const defaultRecordCache = 65536

func newRecCache(max int) *recCache {
	if max <= 0 {
		max = defaultRecordCache
	}
	return &recCache{max: max, m: make(map[string]*crdt.Record, max), ringed: make(map[string]struct{}, max)}
}

// take removes and returns the state of key: the caller owns it and puts
// it back (or a newer one) once its batch is handed to Pebble.
func (c *recCache) take(key []byte) (*crdt.Record, bool) {
	r, ok := c.m[string(key)]
	if ok {
		delete(c.m, string(key))
	}
	return r, ok
}

// put stores rec (which the cache now owns) under key.
func (c *recCache) put(key []byte, rec *crdt.Record) {
	k := string(key)
	c.m[k] = rec
	if _, ok := c.ringed[k]; ok {
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, k)
	} else {
		old := c.order[c.next]
		delete(c.m, old)
		delete(c.ringed, old)
		c.order[c.next] = k
		c.next = (c.next + 1) % c.max
	}
	c.ringed[k] = struct{}{}
}

func (c *recCache) drop(key []byte) { delete(c.m, string(key)) }

// readCached returns the state of rkey for a writer holding s.mu: from the
// cache (taking it out) or from Pebble.
func (s *Store) readCached(rkey []byte) (*crdt.Record, bool, error) {
	if r, ok := s.rcache.take(rkey); ok {
		return r, true, nil
	}
	return s.readRecord(rkey)
}
