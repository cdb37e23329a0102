package node

import "sync"

// Feed wakes the waiters for the next change (the change feed's long
// polls and streams, workflows): Wait returns a channel closed at the
// next Notify. It outlives the replicas (a reset replaces the node, not
// the feed).
type Feed struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed bool
}

// NewFeed returns a feed with no waiters.
func NewFeed() *Feed { return &Feed{ch: make(chan struct{})} }

// Wait returns a channel closed at the next change (at once once the
// feed is closed).
func (n *Feed) Wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes every waiter.
func (n *Feed) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	close(n.ch)
	n.ch = make(chan struct{})
}

// Close wakes every waiter for good (shutdown).
func (n *Feed) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.ch)
	}
}

// Closed reports whether the feed was closed.
func (n *Feed) Closed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}
