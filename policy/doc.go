// Package policy decides, per table, what replicad does beyond the CRDT
// merge: the four policies of the design brief. It is pure, like crdt: no
// I/O, no goroutines, no clock; it reads the outcome crdt reports for a
// write and returns decisions that the caller persists and replicates as
// ordinary writes.
//
//   - lww: field by field, the highest (HLC, node) wins; nothing to decide,
//     but the values that lose to a concurrent write are reported as
//     losses (for the sync-error log).
//   - manual: concurrent writes to a field stay as candidates for a person
//     to choose (Conflicts); a choice is an ordinary write that has seen
//     every candidate.
//   - client-wins: field by field, the change that reached the hub last
//     wins: when the arbiter applies a write that stands beside concurrent
//     candidates, it writes the arriving values again (a write whose
//     context covers every candidate), so they win everywhere.
//   - server-wins: record level: the arbiter rejects a write if it had
//     accepted another change to the record that the writer had not seen
//     (a live operation of the record's existence register the write's
//     context does not cover); it undoes the write's whole change by
//     writing back the values it replaced, and reports the loss.
//
// Decisions are made only by the arbiter (one hub). Until it has seen a
// write, replicas show the write as tentative (Pending).
package policy
