// Package authz is the extension of authorization: the permission rules
// of the configuration (and of signed grants) compiled into Rules, which
// say what a node may write (Check) and read (Readable, ReadLimit: the
// one replication.Scope that narrows what sync sends a device and what
// the hub's API shows it), applied to remote writes by the node's
// Enforcer (internal/node: it elides a write its origin may not make, or,
// on a hub, a write to a system table its origin may not make, judged by
// node.SysJudge, and writes back over it with its sync error), which
// Security.Wire builds. With TLS: the verified Grants, a hub's Publisher
// of them, the device peers' write filters (PeerFilters). The read rules
// applied on sync (Reads) and on the hub's API (ReadGuard, Reader). The
// API's refusal of writes to the system tables (Guard).
package authz
