// Package peers is the peer table: every node that synced with this one,
// in either
// direction (a hub's view of its fleet: the devices it served), with each
// direction's last session, result, writes each way, clock skew and
// version, and the writes this node holds that the peer did not hold at
// its last session. Kept in memory, written to the store (i<peer> with the
// per-table last syncs in p<peer><table>) every FlushEvery and at
// close, so a restart remembers its fleet; bounded by maxPeerRecords
// (the least recently seen forgotten first) and peerForgetAfter.
package peers
