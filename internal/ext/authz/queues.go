package authz

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// MigrateLegacyQueue moves the entries of the one work queue older
// versions shared between the arbiter and the permission enforcer into
// their named queues (decisions: the arbiter's, arbiter.Queue; the
// write-backs: node.WriteBackQueue), oldest first, a page per batch: each
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
				if strings.HasPrefix(string(q.Value), node.LegacyPrefix) {
					b.EnqueueIn(node.WriteBackQueue, q.Value[len(node.LegacyPrefix):])
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

// Opened is what the agent checks and migrates on a store it opens: its
// node id against this node's certificate (CheckNode), then a work queue
// of an older version moved to the named queues (MigrateLegacyQueue;
// decisions: the arbiter's queue).
func (s *Security) Opened(decisions store.QueueName, log hclog.Logger) func(*store.Store) error {
	return func(st *store.Store) error {
		if err := s.CheckNode(st.NodeID()); err != nil {
			return err
		}
		if n, err := MigrateLegacyQueue(st, decisions); err != nil {
			return err
		} else if n > 0 {
			log.Info("work queue moved to the named queues", "entries", n)
		}
		return nil
	}
}
