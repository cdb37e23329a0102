package authz

import (
	"fmt"
	"strings"

	"github.com/replicad/replicad/store"
)

// MigrateLegacyQueue moves the entries of the one work queue older
// versions shared between the arbiter and the permission enforcer into
// their named queues (decisions: the arbiter's, arbiter.Queue; the
// write-backs: WriteBackQueue), oldest first, a page per batch: each
// entry is dequeued in the batch that enqueues it anew, so a crash in
// between loses or doubles nothing. It runs at start, before either reads
// its queue, and returns how many entries it moved.
func MigrateLegacyQueue(st *store.Store, decisions store.QueueName) (int, error) {
	n := 0
	for {
		qs, err := st.Queue(100)
		if err != nil || len(qs) == 0 {
			return n, err
		}
		if err := st.Update(func(b *store.Batch) error {
			for _, q := range qs {
				b.Dequeue(q.ID)
				if strings.HasPrefix(string(q.Value), LegacyPrefix) {
					b.EnqueueIn(WriteBackQueue, q.Value[len(LegacyPrefix):])
				} else {
					b.EnqueueIn(decisions, q.Value)
				}
			}
			return b.Err()
		}); err != nil {
			return n, fmt.Errorf("moving the work queue to its named queues: %w", err)
		}
		n += len(qs)
	}
}
