package store

import (
	"errors"
	"fmt"

	"github.com/replicad/replicad/crdt"
)

// Bases: b<table>\x00<id>\x00<field> holds the value a field had before
// its current value replaced it here (crdt.Entry, msgpack), so that a
// conflict can show the value its candidates started from. The policy
// layer maintains it (PutBase) for the tables that need it.

func baseKey(table, id, field string) []byte {
	k := recordKey(nil, table, id)
	k[0] = pBase
	k = append(k, 0)
	return append(k, field...)
}

// PutBase records in this batch that field of table/id had the value e
// before the write now applied replaced it.
func (b *Batch) PutBase(table, id, field string, e crdt.Entry) {
	b.setEncoded(baseKey(table, id, field), e)
}

// deleteBases removes the bases of table/id's fields in this batch.
func (b *Batch) deleteBases(table, id string) {
	if b.err != nil {
		return
	}
	lo := recordKey(nil, table, id)
	lo[0] = pBase
	lo = append(lo, 0)
	b.err = b.b.DeleteRange(lo, prefixEnd(lo), nil)
}

// Base returns the value field of table/id had before its current value
// replaced it here, if recorded (PutBase).
func (s *Store) Base(table, id, field string) (crdt.Entry, bool, error) {
	var e crdt.Entry
	if err := checkName(table, id); err != nil {
		return e, false, err
	}
	err := s.getValue(baseKey(table, id, field), &e)
	if errors.Is(err, ErrNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("store: base of %s/%s %s: %w", table, id, field, err)
	}
	return e, true, nil
}
