package store

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// StreamTables is Stream for a reader that needs the writes of some
// tables only (a sync session for a peer whose scope lists tables): fn
// gets every log entry of origin after after, in order, with its
// sequence number; the write itself only when want is nil or
// want(table) is true, else nil (its entry is not decoded: a hub streaming its log for a device
// with a narrow scope would otherwise decode every other device's
// writes). Same bounds, durability rule and errors as Stream.
func (s *Store) StreamTables(origin hlc.NodeID, after uint64, want func(table []byte) bool, fn func(seq uint64, w *crdt.Write) error) error {
	if err := s.usable(); err != nil {
		return err
	}
	hi := ^uint64(0)
	if origin == s.node {
		hi = s.durableSeq.Load()
	}
	if after >= hi {
		return nil
	}
	lower, upper := logBounds(origin, after+1, hi)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		key := it.Key()
		if len(key) != 17 {
			return corruptf(key, "log key of %d bytes", len(key))
		}
		v, err := s.itValue(it, &buf)
		if err != nil {
			return err
		}
		if want != nil {
			if t, ok := crdt.WriteTable(v); ok && !want(t) {
				if err := fn(be(key[9:]), nil); err != nil {
					return err
				}
				continue
			}
		}
		w, err := decodeLogEntry(key, v)
		if err != nil {
			return err
		}
		if err := fn(w.Seq, w); err != nil {
			return err
		}
	}
	return it.Error()
}
