// Package crdt is replicad's merge core: field-level multi-value registers
// stamped with hybrid logical clocks, whose last-writer-wins view is the
// default `lww` policy and whose concurrent candidates are what the `manual`
// policy shows a person.
//
// The package is pure, in the manner of etcd-io/raft's state machine: no
// I/O, no goroutines, no clock, no logging, no storage handle. The caller
// (the store) reads a [Record], hands it [Write]s with [Record.Apply] or
// whole states with [Record.Merge], and persists the result. Time enters
// only as the stamps inside writes.
//
// # Model
//
// A write is made by one origin node, numbered by that origin's sequence
// (1, 2, 3...), stamped with the origin's HLC, and carries the causal
// context of the record as the writer saw it: a version vector [VV] over
// the writes to that record. A write supersedes, on every field it sets,
// exactly the candidates its context covers (the writes it had seen).
// Candidates neither covers are concurrent and stay side by side until a
// later write that saw them all supersedes them. Deletes are writes of
// "cleared" to every field, known or not yet known, and the record's
// existence is one more register over all operations. See [Record] for the
// rules and their representation.
//
// # Tie-breaks
//
// Among concurrent candidates, last-writer-wins picks the highest
// [hlc.Stamp]: HLC timestamp, then origin node id. Two distinct writes
// never share a stamp (an origin's timestamps strictly increase), so values
// are never compared; [CompareValues] exists for callers that need a total
// order of values, such as a resolution that picks among equal candidates.
//
// # Precondition
//
// Writes of one origin to one record must be applied in the order the
// origin made them; duplicates and any interleaving of origins are fine.
// The store enforces this with its per-origin bookkeeping. Under it, Apply
// and Merge converge: replicas that received the same writes, in any such
// order, hold byte-identical records ([Record.Digest]).
package crdt
