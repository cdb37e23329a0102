// Package gossip is replicad's cluster membership, built on
// hashicorp/memberlist: which nodes exist, how to reach their sync service,
// and small pushes of fresh writes.
//
// # What it is not
//
// gossip knows nothing of records, merge rules or storage: message payloads
// are opaque bytes of at most MaxBroadcastSize. Bulk data never rides on
// gossip, including memberlist's push/pull state, which is a tiny digest:
// the sync package moves data over its own streams. A broadcast is a hint
// that is usually delivered, not a guarantee; anti-entropy repairs what it
// misses.
//
// # Membership
//
// Every node advertises a Meta (role, sync address, cluster id, protocol
// version), encoded as a msgpack array in at most 512 bytes. A node refuses
// (does not admit as a member, logs once at warn level, counts in
// Stats.RefusedJoins) any node whose meta does not decode, names another
// cluster, or has a protocol version that is not Compatible with its own.
//
// memberlist does not heal partitions by itself once it has forgotten dead
// nodes, so each node re-joins its seeds (Config.Join) and the members it
// has seen die recently every Config.RejoinInterval, and at once on Rejoin
// or when put back online.
//
// # Broadcasts
//
// Broadcast queues a payload under a key; a newer broadcast of the same key
// supersedes a queued older one, and receivers drop versions older than one
// they delivered. Receivers relay broadcasts (memberlist alone only gossips
// from the originating node, which misses nodes of larger clusters). The
// queue is bounded and drops its oldest entry when full. SendTo sends one
// best-effort packet to one member.
//
// # Offline
//
// SetOnline(false) closes a GateTransport in front of the node's transport:
// nothing crosses the network until SetOnline(true), which re-joins.
//
// # Goroutines and callbacks
//
// A Gossip runs memberlist's goroutines, one goroutine per callback
// (Config.OnMessage, Config.OnMemberChange), a rejoin loop and a gate's two
// forwarders. Callbacks are never called under memberlist's locks and
// receive copies. Shutdown stops all of them.
//
// # Testing support
//
// MemNetwork is an in-memory network for many nodes in one process;
// FaultNet and FaultTransport inject seeded loss, delay and partitions;
// GateTransport switches any transport off and on. Use ProfileLocal for
// fast timings.
package gossip
