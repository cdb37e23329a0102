package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
)

// The causal context of collected records.
//
// Collection removes a deleted record's state (gc.go), and with it what
// this replica had seen of the record. A local write to the record made
// afterwards would carry an empty context: a replica that kept the
// tombstone (it has not collected yet: only hubs bring the horizon, so a
// device can sync with another before both collected), or that gets the
// write before the delete, would hold the delete and the write as
// concurrent (an existence conflict) where this replica shows the write
// alone. So collection keeps the record's context, z<table>\x00<id> (the
// flattened crdt.Record.Context of the collected state: one entry per
// origin that wrote the record), and a local write to the record while it
// has no state takes it as its context, exactly the context it would have
// had over the tombstone: it supersedes the delete everywhere, and names
// this origin's previous write to the record as its predecessor
// (settleCollected marks that write applied here). The marker is removed
// by that write; a record given state again by other replicas' writes
// keeps it (never read while the record has state) until it is collected
// again (replaced) or written here.
//
// The horizon alone would not do as that context: it names a write of
// every origin, most of them to other records, so the write would not be
// ready (crdt.Record.Ready) on a replica whose record holds an older write
// of this origin, a filtered replica would hold it back (causalReady),
// and the record's covers, and every later write's context, would carry
// one entry per origin of the cluster; and a new record is no different
// from a collected one without the marker.

const pCollected = 'z'

func collectedKey(table, id string) []byte {
	k := recordKey(nil, table, id)
	k[0] = pCollected
	return k
}

// collectedContext returns the context a record collected here had, if
// there is a marker.
func (s *Store) collectedContext(table, id string) (crdt.VV, bool, error) {
	k := collectedKey(table, id)
	v, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	defer c.Close()
	vv, err := decodeVV(k, v)
	if err != nil {
		return nil, false, err
	}
	return vv, true, nil
}

// keepCollectedContext adds to b the marker of table/id's collected
// state rec (nil: none).
func (b *Batch) keepCollectedContext(table, id string, rec *crdt.Record) {
	if rec == nil {
		return
	}
	if ctx := rec.Context(); len(ctx) > 0 {
		b.setEncoded(collectedKey(table, id), flatVV(ctx))
	}
}
