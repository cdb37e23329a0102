package gossip

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestBQueueEvictsOldest pushes many broadcasts, some superseding queued
// ones and some drained by get, into a small queue: it keeps exactly the
// newest live broadcasts, and its insertion-order index stays bounded.
func TestBQueueEvictsOldest(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	const max = 16
	q := newBQueue(max, 4, func() int { return 3 })
	model := map[string]uint64{} // name -> id of its live broadcast
	for i := range 20000 {
		name := fmt.Sprintf("k%d", rng.IntN(64))
		q.push(name, []byte(name))
		model[name] = q.nextID
		if len(model) > max { // the oldest live broadcast goes
			oldest, oid := "", uint64(0)
			for n, id := range model {
				if oldest == "" || id < oid {
					oldest, oid = n, id
				}
			}
			delete(model, oldest)
		}
		if rng.IntN(50) == 0 {
			for range 12 { // enough rounds to reach every transmit limit
				q.get(0, 1<<20)
			}
			clear(model)
		}
		if len(q.items) != len(model) {
			t.Fatalf("seed %d, step %d: %d queued, want %d", seed, i, len(q.items), len(model))
		}
		for n, id := range model {
			if it := q.items[n]; it == nil || it.id != id {
				t.Fatalf("seed %d, step %d: %s not the live broadcast %d", seed, i, n, id)
			}
		}
		if n := len(q.fifo) - q.head; n > 2*len(q.items)+65 {
			t.Fatalf("seed %d, step %d: order index of %d entries for %d items", seed, i, n, len(q.items))
		}
	}
}

// BenchmarkBQueuePushFull is a lone node's case: every local write is
// broadcast into a full queue nobody drains.
func BenchmarkBQueuePushFull(b *testing.B) {
	q := newBQueue(1024, 4, func() int { return 1 })
	names := make([]string, 4096)
	for i := range names {
		names[i] = fmt.Sprintf("node/table/r%d", i)
	}
	msg := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.push(names[i%len(names)], msg)
	}
}
