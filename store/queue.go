package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// A durable work queue (q<id:8> → opaque bytes) for the layers above: an
// entry enqueued in the batch that applies writes survives a crash with
// them, and is removed in the batch of the work it asked for, so the work
// happens exactly once. The policy arbiter queues its decisions here.

// Queued is one queue entry.
type Queued struct {
	ID    uint64
	Value []byte
}

// Enqueue adds v to the queue in this batch and returns its id.
func (b *Batch) Enqueue(v []byte) uint64 {
	if b.err != nil {
		return 0
	}
	b.qSeq++
	b.set(u64Key(nil, pQueue, b.qSeq), v)
	return b.qSeq
}

// Dequeue removes entry id in this batch.
func (b *Batch) Dequeue(id uint64) {
	b.del(u64Key(nil, pQueue, id))
}

// Queue returns up to limit entries (0: 100; negative: all), oldest
// first. The values are the caller's.
func (s *Store) Queue(limit int) ([]Queued, error) {
	if limit == 0 {
		limit = 100
	}
	var out []Queued
	err := s.scanPrefix([]byte{pQueue}, func(k, v []byte) error {
		if len(k) != 9 {
			return corruptf(k, "queue key of %d bytes", len(k))
		}
		if len(out) == limit {
			return errStopScan
		}
		out = append(out, Queued{ID: be(k[1:]), Value: append([]byte(nil), v...)})
		return nil
	})
	if err == errStopScan {
		err = nil
	}
	return out, err
}

// Update runs fill on a fresh batch under the write mutex and commits it
// durably: bookkeeping that must change together (for example a dequeue
// with the sync errors it records).
func (s *Store) Update(fill func(b *Batch) error) error {
	if fill == nil {
		return fmt.Errorf("%w: no fill", ErrInvalid)
	}
	return s.commitBook(fill)
}

// PutRestamp records in this batch that the local write dot re-wrote the
// value of write orig on its behalf (a policy decision carried out), so
// that a later loss of that value can name the write that made it.
func (b *Batch) PutRestamp(dot, orig crdt.Dot) {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(orig.Node))
	b.set(u64u64Key(nil, pRestamp, uint64(dot.Node), dot.Seq), binary.BigEndian.AppendUint64(v, orig.Seq))
}

// Restamp returns the write whose value dot re-wrote (PutRestamp), if any.
func (s *Store) Restamp(dot crdt.Dot) (crdt.Dot, bool, error) {
	if err := s.usable(); err != nil {
		return crdt.Dot{}, false, err
	}
	k := u64u64Key(nil, pRestamp, uint64(dot.Node), dot.Seq)
	val, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return crdt.Dot{}, false, nil
	}
	if err != nil {
		return crdt.Dot{}, false, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	defer c.Close()
	if len(val) != 16 {
		return crdt.Dot{}, false, corruptf(k, "restamp of %d bytes", len(val))
	}
	return crdt.Dot{Node: hlc.NodeID(be(val[:8])), Seq: be(val[8:])}, true, nil
}
