// Package dedupe is the extension that detects suspected duplicate
// records on the arbitrating hub (work that only runs online). A table
// may declare key fields (config `table "T" { keys = [...] }`, or --keys).
// The arbitrating hub files every live record of such a table that has a
// value (not null) for every key field under a digest of those values,
// last-writer-wins, in the store's key index (store/dupindex.go); the
// index changes in the batch of the write that changes the record (remote
// writes: the node's apply hooks; every local write, the arbiter's
// decisions and the permission write-backs included: the node's write
// pipeline), so it never disagrees with the records after a crash.
//
// A record is checked when it is created and whenever its key values
// change (Dynamics checks on create and update): if other live records
// are filed under its new digest (their key values are equal, value for
// value), it is a suspected duplicate of them. Nothing is merged: the
// hub records a pending flag in the same batch and publishes it as a
// record of the system table Table, which replicates like any table,
// so every replica lists it among its conflicts (kind "duplicate") and
// can resolve it (POST /v1/duplicates/{table}/{id}). Records that
// matched before the keys were declared are not flagged (declaring keys
// builds the index at the next start without flags).
package dedupe
