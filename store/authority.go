package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/hlc"
)

// DropEmpties forgets that this replica holds origin's sequence numbers
// that a sender declared empty (held with no write logged), those within
// within (nil: every one): the origin is
// the authority on its own sequence numbers, and when it contradicts such
// a claim (it made real writes there, or never reached them) the claim is
// dropped so that the real writes can be taken. Writes logged here are
// kept. It returns the numbers no longer held. Errors: ErrInvalid (origin
// 0 or this node), ErrCorrupt, ErrClosed, ErrFailed.
func (s *Store) DropEmpties(origin hlc.NodeID, within *Held) (Held, error) {
	if origin == 0 || origin == s.node {
		return Held{}, fmt.Errorf("%w: empties of origin %s cannot be dropped here", ErrInvalid, origin)
	}
	lower := u64Key(nil, pEmpty, uint64(origin))
	// Usually there is nothing to drop: look first without the write lock
	// (sessions call this at every handshake with their origin).
	if err := s.scanKeys(lower, func([]byte) error { return errStopScan }); err == nil {
		return Held{}, nil
	} else if !errors.Is(err, errStopScan) {
		return Held{}, err
	}
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return Held{}, err
	}
	var dropped Held
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		s.mu.Unlock()
		return Held{}, err
	}
	b := s.newBatch()
	defer b.close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := s.itValue(it, &buf)
		if err != nil {
			it.Close()
			s.mu.Unlock()
			return Held{}, err
		}
		if len(k) != 17 || len(v) != 8 || be(v) < be(k[9:]) {
			it.Close()
			s.mu.Unlock()
			return Held{}, corruptf(k, "malformed empty range")
		}
		var r Held
		r.Add(be(k[9:]), be(v))
		if within == nil {
			dropped.Add(be(k[9:]), be(v))
			b.del(append([]byte(nil), k...))
			continue
		}
		var outside Held
		for _, m := range within.Missing(r) {
			outside.Add(m.Lo, m.Hi)
		}
		inside := outside.Missing(r)
		if len(inside) == 0 {
			continue
		}
		for _, m := range inside {
			dropped.Add(m.Lo, m.Hi)
		}
		b.del(append([]byte(nil), k...))
		for _, m := range within.Missing(r) {
			b.set(emptyKey(origin, m.Lo), u64val(m.Hi))
		}
	}
	if err := it.Close(); err != nil {
		s.mu.Unlock()
		return Held{}, err
	}
	if dropped.Max() == 0 {
		s.mu.Unlock()
		return Held{}, nil
	}
	h := s.heldOf(origin).minus(dropped)
	b.setEncoded(originKey(origin), h.flat())
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return Held{}, err
	}
	s.publish(b)
	s.publishHeld(map[hlc.NodeID]*Held{origin: &h})
	s.mu.Unlock()
	return dropped, wait()
}

// DropAllEmpties is DropEmpties of every origin but this node's (a full
// replica holds no empty claim legitimately). It returns the numbers no
// longer held, by origin.
func (s *Store) DropAllEmpties() (map[hlc.NodeID]Held, error) {
	prefix := []byte{pEmpty}
	var origins []hlc.NodeID
	err := s.scanKeys(prefix, func(k []byte) error {
		if len(k) != 17 {
			return corruptf(k, "malformed empty range")
		}
		o := hlc.NodeID(be(k[1:9]))
		if len(origins) == 0 || origins[len(origins)-1] != o {
			origins = append(origins, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[hlc.NodeID]Held{}
	for _, o := range origins {
		if o == s.node {
			continue
		}
		d, err := s.DropEmpties(o, nil)
		if err != nil {
			return out, err
		}
		if d.Max() > 0 {
			out[o] = d
		}
	}
	return out, nil
}

// minus returns h without the numbers o holds.
func (h Held) minus(o Held) Held {
	var out Held
	for _, m := range o.Missing(h) {
		out.Add(m.Lo, m.Hi)
	}
	return out
}

// metaVoids holds replication's list of false empty claims to pass on.
const metaVoids = "voids"

// SetVoids keeps b, replication's list of the empty claims found false
// that it passes on to its peers, across restarts.
func (s *Store) SetVoids(b []byte) error {
	return s.commitBook(func(bt *Batch) error {
		bt.set(metaKey(metaVoids), b)
		return bt.err
	})
}

// Voids returns what SetVoids kept (nil: nothing).
func (s *Store) Voids() ([]byte, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	v, c, err := s.get(metaKey(metaVoids))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return append([]byte(nil), v...), nil
}
