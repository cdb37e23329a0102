package agent

import (
	"fmt"
	"strings"

	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/store"
)

// migrateQueue moves the entries of the one work queue older versions
// shared between the arbiter and the permission enforcer into their
// named queues (arbiter.Queue, authz.WriteBackQueue), oldest first, a page per
// batch: each entry is dequeued in the batch that enqueues it anew, so a
// crash in between loses or doubles nothing. It runs at start, before
// either reads its queue.
func migrateQueue(st *store.Store) (int, error) {
	n := 0
	for {
		qs, err := st.Queue(100)
		if err != nil || len(qs) == 0 {
			return n, err
		}
		if err := st.Update(func(b *store.Batch) error {
			for _, q := range qs {
				b.Dequeue(q.ID)
				if strings.HasPrefix(string(q.Value), authz.LegacyPrefix) {
					b.EnqueueIn(authz.WriteBackQueue, q.Value[len(authz.LegacyPrefix):])
				} else {
					b.EnqueueIn(arbiter.Queue, q.Value)
				}
			}
			return b.Err()
		}); err != nil {
			return n, fmt.Errorf("moving the work queue to its named queues: %w", err)
		}
		n += len(qs)
	}
}
