package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Named work queues (Q<name:1><id:8> → opaque bytes): one namespace per
// layer that queues work (the policy arbiter's decisions, the permission
// write-backs), so that entries of one never stand in the way of
// another's. Ids come from the same sequence as the unnamed queue
// (queue.go), which older versions shared between those layers.
const pQueues = 'Q'

// QueueName names a queue: one byte, chosen by the layer that owns it.
type QueueName byte

// EnqueueIn adds v to queue q in this batch and returns its id.
func (b *Batch) EnqueueIn(q QueueName, v []byte) uint64 {
	if b.err != nil {
		return 0
	}
	b.qSeq++
	b.set(namedQueueKey(q, b.qSeq), v)
	return b.qSeq
}

// DequeueFrom removes entry id of queue q in this batch.
func (b *Batch) DequeueFrom(q QueueName, id uint64) {
	b.del(namedQueueKey(q, id))
}

// QueueOf returns up to limit entries of queue q (0: 100; negative: all),
// oldest first. The values are the caller's.
func (s *Store) QueueOf(q QueueName, limit int) ([]Queued, error) {
	if limit == 0 {
		limit = 100
	}
	var out []Queued
	err := s.scanPrefix([]byte{pQueues, byte(q)}, func(k, v []byte) error {
		if len(k) != 10 {
			return corruptf(k, "queue key of %d bytes", len(k))
		}
		if len(out) == limit {
			return errStopScan
		}
		out = append(out, Queued{ID: be(k[2:]), Value: append([]byte(nil), v...)})
		return nil
	})
	if err == errStopScan {
		err = nil
	}
	return out, err
}

func namedQueueKey(q QueueName, id uint64) []byte {
	return u64Key([]byte{pQueues}, byte(q), id)
}

// lastQueueID is the highest queue id in use, named queues or not.
func (s *Store) lastQueueID() (uint64, error) {
	last, err := s.lastU64(pQueue)
	if err != nil {
		return 0, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pQueues}, UpperBound: []byte{pQueues + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 10 {
			return 0, corruptf(k, "queue key of %d bytes", len(k))
		}
		last = max(last, be(k[2:]))
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("store: scan the queues: %w", err)
	}
	return last, nil
}
