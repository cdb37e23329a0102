// Package workflows is the extension that runs a hub's workflows (work
// that only runs online): hooks on
// the changes it accepts, an HTTP webhook (the change POSTed as JSON) or
// a command (the change as JSON on stdin).
//
// Each workflow is a consumer of the hub's durable change feed (the
// store's feed, GET /v1/changes), which lists every write applied on the
// hub, local or from a device, in the order the hub applied it: the
// order the changes were accepted. Its cursor (the last feed position it
// finished) is kept in the store (store/consumer.go), written in the
// batch that records the change's outcome, so a restart, kill -9
// included, resumes after the last confirmed change; a change whose
// delivery was not confirmed is delivered again (at least once: a
// receiver deduplicates by the "delivery" id, which is stable across
// retries and restarts). A workflow delivers one change at a time and
// retries a failing one with exponential backoff (250ms doubling to
// max_backoff) until it is confirmed, holding back the later ones, or,
// with max_attempts, gives up on it (recorded as failed) and goes on.
// Workflows run in their own goroutines and only read the store: a
// failing hook never blocks or slows sync.
//
// "Accepted", for client-wins and server-wins tables, is after the
// arbiter's decision: a change is delivered once the arbiter has carried
// out its decision about it (its queued decision is gone), and the
// payload carries both the change as it was made ("fields": what it set)
// and the record's state at delivery ("record"), which includes the
// decision (a server-wins change that was undone shows the restored
// values; the arbiter's own writes are changes too and are delivered in
// their turn). A new workflow starts with the changes accepted after it
// was first configured.
package workflows
