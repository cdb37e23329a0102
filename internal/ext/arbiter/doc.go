// Package arbiter is the extension that makes the arbitrating hub's
// policy decisions (package policy) durable: an apply hook judges each
// write applied from another replica and queues the decision in the
// batch that applies it (the store's named queue Queue), and Drain
// carries the decisions out through the node's write pipeline. Other
// extensions ask it whether a write is decided through Pending, never by
// reading its queue.
package arbiter
