package gossip

import (
	"math"
	"slices"
	"sync"
)

// bqueue is the bounded broadcast queue behind Delegate.GetBroadcasts.
//
// It replaces memberlist.TransmitLimitedQueue, whose Prune drops the
// smallest message rather than the oldest and whose Finished callback does not
// tell a sent broadcast from a dropped one. Semantics are the same otherwise:
// each broadcast is piggybacked on up to retransmitLimit gossip rounds,
// broadcasts sent fewer times go first (newest first among equals), and a
// broadcast supersedes a queued one with the same name.
type bqueue struct {
	mu         sync.Mutex
	max        int
	mult       int
	numNodes   func() int
	items      map[string]*qitem
	fifo       []*qitem // items in insertion order, with stale ones (sent, superseded) left in place
	head       int      // index of the oldest entry of fifo
	nextID     uint64
	sent       uint64 // broadcasts that reached their transmit limit
	dropped    uint64 // evicted because the queue was full
	superseded uint64 // replaced by a newer broadcast of the same name
	transmits  uint64 // piggybacked copies handed to memberlist
}

type qitem struct {
	name      string
	msg       []byte
	id        uint64 // insertion order: higher is newer
	transmits int
}

func newBQueue(max, mult int, numNodes func() int) *bqueue {
	return &bqueue{max: max, mult: mult, numNodes: numNodes, items: make(map[string]*qitem)}
}

// retransmitLimit mirrors memberlist's: mult * ceil(log10(n+1)).
func retransmitLimit(mult, n int) int {
	return mult * int(math.Ceil(math.Log10(float64(n+1))))
}

// push queues msg under name, superseding a queued broadcast of that name,
// and evicts the oldest broadcasts while the queue is over its bound.
func (q *bqueue) push(name string, msg []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.items[name]; ok {
		q.superseded++
	}
	q.nextID++
	it := &qitem{name: name, msg: msg, id: q.nextID}
	q.items[name] = it
	q.fifo = append(q.fifo, it)
	// Evict the oldest live broadcasts: O(1) per push, amortized (a full
	// queue with no member to drain it is the common case of a lone node).
	for len(q.items) > q.max && q.head < len(q.fifo) {
		old := q.fifo[q.head]
		q.fifo[q.head] = nil
		q.head++
		if q.items[old.name] == old {
			delete(q.items, old.name)
			q.dropped++
		}
	}
	q.compact()
}

// compact drops fifo's stale entries (sent, superseded, evicted) once they
// are most of it, so that it stays within about twice the queue.
func (q *bqueue) compact() {
	if n := len(q.fifo) - q.head; n > 2*len(q.items)+64 || q.head > 1024 && q.head > n {
		live := make([]*qitem, 0, len(q.items)+16)
		for _, it := range q.fifo[q.head:] {
			if it != nil && q.items[it.name] == it {
				live = append(live, it)
			}
		}
		q.fifo, q.head = live, 0
	}
}

// get returns queued messages that fit in limit bytes, counting overhead
// bytes per message, as memberlist.Delegate.GetBroadcasts does.
func (q *bqueue) get(overhead, limit int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	order := make([]*qitem, 0, len(q.items))
	for _, it := range q.items {
		order = append(order, it)
	}
	slices.SortFunc(order, func(a, b *qitem) int {
		if a.transmits != b.transmits {
			return a.transmits - b.transmits
		}
		if a.id > b.id {
			return -1
		}
		return 1
	})
	tlimit := max(1, retransmitLimit(q.mult, q.numNodes()))
	var out [][]byte
	used := 0
	for _, it := range order {
		if used+overhead+len(it.msg) > limit {
			continue
		}
		used += overhead + len(it.msg)
		out = append(out, it.msg)
		q.transmits++
		it.transmits++
		if it.transmits >= tlimit {
			delete(q.items, it.name)
			q.sent++
		}
	}
	q.compact()
	return out
}

type queueStats struct {
	queued                               int
	sent, dropped, superseded, transmits uint64
}

func (q *bqueue) stats() queueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueStats{len(q.items), q.sent, q.dropped, q.superseded, q.transmits}
}

func (q *bqueue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.items)
	q.fifo, q.head = nil, 0
}
