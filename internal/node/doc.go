// Package node is the host of one replica: the store, the hybrid logical
// clock and the node id, with the one write pipeline every local write
// goes through and the ordered hook registry the features plug into.
//
// A local write (Write) and a decided write (WriteDecided, a write whose
// fields are chosen under the store's write mutex from the record as it
// stands) commit in one batch with the in-batch steps, in this order:
// the conflict bases of manual tables, the registered local-write hooks
// (in registration order), then the caller's own additions. After the
// commit, the one epilogue (Wrote) tells the registered observers (in
// registration order) and the replication engine. Writes applied from
// other replicas run the registered apply hooks, in registration order,
// inside the batch that applies them (ApplyHook).
//
// Every hub, the agent's and an embedded one, judges the remote writes to
// the system tables by the one statement of their writers (SysTables)
// with SysJudge, and the Enforcer elides a refused write and writes back
// over it with its sync error (the agent's permission rules run in it
// too).
//
// The package has no HTTP and reads no flags: it is the engine of a
// replica whatever embeds it.
package node
