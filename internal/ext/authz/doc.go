// Package authz is the extension of authorization: the permission rules
// of the configuration (and of signed grants) compiled into Rules, which
// say what a node may write (Check) and read (Readable, ReadLimit: the
// one replication.Scope that narrows what sync sends a device and what
// the hub's API shows it), and the Enforcer, which elides a remote write
// its origin may not make (or, on a hub, a write to a system table its
// origin may not make), queues the write-back over it in the batch that
// applies the skeleton (the store's named queue WriteBackQueue) and
// carries it out through the node's write pipeline with its sync error.
// With TLS: the verified Grants, a hub's Publisher of them, the device
// peers' write filters (PeerFilters). A hub's SysJudge of system-table
// writes. The read rules applied on sync (Reads) and on the hub's API
// (ReadGuard, Reader).
package authz
