package store

import (
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// ScopeBatch is what a sync layer adds to the batch of an apply or a
// merge besides the store's own changes: records hidden, shown, purged
// (left the replica's scope) or collected, and the hidden marks as the
// batch leaves them. *Batch implements it; a
// replica that is not a Store (the research lab's) implements it on its
// own state, so that the sync layer's hooks always get a batch.
type ScopeBatch interface {
	// HiddenSkipped reads a record's hidden mark as the batch leaves it
	// (Batch.HiddenSkipped): a hook reads it here, not from the store,
	// which shows the committed state without this batch's changes.
	HiddenSkipped(table, id string) (crdt.VV, bool)
	SetHidden(table, id string, hidden bool, skipped crdt.VV)
	Purge(table, id string, skipped crdt.VV)
	CollectRecord(table, id string)
	// Err is the first error of the batch's methods (the call then fails
	// and commits nothing).
	Err() error
}

// ApplyRemoteScoped is ApplyRemoteWith with the hook given the batch as
// a ScopeBatch (the sync layer's contract, replication.Store).
func (s *Store) ApplyRemoteScoped(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]SeqRange, hook func(ScopeBatch, *Result) error) (*Result, error) {
	if hook == nil {
		return s.ApplyRemoteWith(clock, writes, empties, nil)
	}
	return s.ApplyRemoteWith(clock, writes, empties, func(b *Batch, r *Result) error { return hook(b, r) })
}

// MergeRecordScoped is MergeRecordWith with the hook given the batch as a
// ScopeBatch.
func (s *Store) MergeRecordScoped(clock *hlc.Clock, table, id string, in *crdt.Record, hook func(ScopeBatch, *crdt.Record) error) (bool, error) {
	if hook == nil {
		return s.MergeRecordWith(clock, table, id, in, nil)
	}
	return s.MergeRecordWith(clock, table, id, in, func(b *Batch, rec *crdt.Record) error { return hook(b, rec) })
}
