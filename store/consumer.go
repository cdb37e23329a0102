package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Feed consumers (w...): the layers above run work over the change feed
// (the hub's workflows) and keep here, per consumer, its state (with the
// cursor: the last feed position it finished) and the outcome of each
// change it handled, so that a restart resumes after the last confirmed
// change.
//
//	w 0x01 <name>                → opaque: the consumer's state
//	w 0x02 <name> 0x00 <feed:8>  → opaque: the outcome for that feed entry
//
// Names are 1-64 characters of [A-Za-z0-9_.-] (as table names).

const (
	consumerState   = 1
	consumerOutcome = 2
)

func consumerStateKey(name string) []byte {
	return append([]byte{pConsumer, consumerState}, name...)
}

func consumerOutcomePrefix(name string) []byte {
	k := append([]byte{pConsumer, consumerOutcome}, name...)
	return append(k, 0)
}

func checkConsumer(name string) error {
	if !ValidTable(name) {
		return fmt.Errorf("%w: consumer name %q (want 1-%d chars of [A-Za-z0-9_.-])", ErrInvalid, name, MaxTableLen)
	}
	return nil
}

// PutConsumer records consumer name's state in this batch.
func (b *Batch) PutConsumer(name string, state []byte) {
	if b.err != nil {
		return
	}
	if err := checkConsumer(name); err != nil {
		b.err = err
		return
	}
	b.set(consumerStateKey(name), state)
}

// Consumer returns consumer name's state, if recorded.
func (s *Store) Consumer(name string) ([]byte, bool, error) {
	if err := checkConsumer(name); err != nil {
		return nil, false, err
	}
	return s.getRaw(consumerStateKey(name))
}

// PutConsumerOutcome records in this batch consumer name's outcome for
// feed entry n.
func (b *Batch) PutConsumerOutcome(name string, n uint64, v []byte) {
	if b.err != nil {
		return
	}
	if err := checkConsumer(name); err != nil {
		b.err = err
		return
	}
	b.set(outcomeKey(name, n), v)
}

func outcomeKey(name string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(consumerOutcomePrefix(name), n)
}

// PruneConsumerOutcomes removes in this batch consumer name's outcomes
// for feed entries below n.
func (b *Batch) PruneConsumerOutcomes(name string, below uint64) {
	if b.err != nil || below == 0 {
		return
	}
	b.err = b.b.DeleteRange(consumerOutcomePrefix(name), outcomeKey(name, below), nil)
}

// ConsumerOutcome is one recorded outcome.
type ConsumerOutcome struct {
	Feed  uint64
	Value []byte
}

// ConsumerOutcomes returns up to limit (<= 0: 100) of consumer name's
// outcomes for feed entries below before (0: any), newest first.
func (s *Store) ConsumerOutcomes(name string, before uint64, limit int) ([]ConsumerOutcome, error) {
	if err := checkConsumer(name); err != nil {
		return nil, err
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	lower := consumerOutcomePrefix(name)
	upper := prefixEnd(lower)
	if before > 0 {
		upper = outcomeKey(name, before)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []ConsumerOutcome
	var buf []byte
	for ok := it.Last(); ok && len(out) < limit; ok = it.Prev() {
		k := it.Key()
		if len(k) != len(lower)+8 {
			return nil, corruptf(k, "consumer outcome key of %d bytes", len(k))
		}
		v, err := s.itValue(it, &buf)
		if err != nil {
			return nil, err
		}
		out = append(out, ConsumerOutcome{Feed: be(k[len(lower):]), Value: append([]byte(nil), v...)})
	}
	if err := it.Error(); err != nil && !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	return out, nil
}
