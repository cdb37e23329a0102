package store

import (
	"strings"
	"sync"
)

// Scope changes do not enter the change feed: a record hidden, shown
// again, purged (all three: it left or entered this replica's scope) or
// collected (its deleted state removed under the tombstone horizon) in a
// batch that writes nothing to it has no feed entry. Readers that keep a
// derived view of the records (live queries, package query/live) learn of
// them here instead.

// ScopeWatcher is told of the records a committed batch hid, showed,
// purged or collected, as table, id pairs, and the scope-change position
// after them (ScopeHead: the batch's changes are the positions end-len+1
// to end). It is called with the store's write mutex held, right after
// the batch is published: it must return quickly and must not call the
// store (hand the keys to another goroutine).
type ScopeWatcher func(keys [][2]string, end uint64)

// scopeWatch holds the registered watchers.
type scopeWatch struct {
	mu   sync.RWMutex
	fn   map[int]ScopeWatcher
	n    int
	dead bool // removed from scopeWatches with its last watcher
}

// scopeWatches maps a *Store with watchers to its *scopeWatch; a store
// leaves it with its last watcher.
var scopeWatches sync.Map

// WatchScope registers fn for the scope changes of s's committed batches
// and returns the function that unregisters it and the scope-change
// position fn is told of the changes after.
func (s *Store) WatchScope(fn ScopeWatcher) (cancel func(), head uint64) {
	s.mu.Lock() // no batch is published meanwhile: head is exact
	defer s.mu.Unlock()
	var w *scopeWatch
	for {
		v, _ := scopeWatches.LoadOrStore(s, &scopeWatch{fn: map[int]ScopeWatcher{}})
		w = v.(*scopeWatch)
		w.mu.Lock()
		if !w.dead {
			break
		}
		w.mu.Unlock()
	}
	w.n++
	id := w.n
	w.fn[id] = fn
	w.mu.Unlock()
	return s.unwatchScope(w, id), s.scopeSeq
}

func (s *Store) unwatchScope(w *scopeWatch, id int) func() {
	return func() {
		w.mu.Lock()
		delete(w.fn, id)
		if len(w.fn) == 0 && !w.dead {
			w.dead = true
			scopeWatches.Delete(s)
		}
		w.mu.Unlock()
	}
}

// noteScope tells the watchers of a published batch's hide operations.
func (s *Store) noteScope(ops []hideOp) {
	v, ok := scopeWatches.Load(s)
	if !ok || len(ops) == 0 {
		return
	}
	w := v.(*scopeWatch)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if len(w.fn) == 0 {
		return
	}
	keys := make([][2]string, 0, len(ops))
	for _, op := range ops {
		table, id, _ := strings.Cut(op.key, "\x00")
		keys = append(keys, [2]string{table, id})
	}
	for _, fn := range w.fn {
		fn(keys, s.scopeSeq)
	}
}

// FeedVisible returns the position of the last feed entry whose write
// readers can already see: FeedHead's, or a later one whose fsync is in
// progress (FeedHead reaches it once it is durable). A snapshot taken
// before the call sees no write with a later feed entry.
func (s *Store) FeedVisible() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feed
}
