// Package replication is replicad's anti-entropy: the protocol by which two
// replicas learn what the other lacks and send it, and the engine that runs
// it with hubs and peers.
//
// A [Session] is a state machine in the manner of etcd-io/raft: it takes
// the peer's messages ([Session.Handle]) and returns the messages to send,
// doing its storage through a [Store] and reading time only from the
// [hlc.Clock] it is given. It owns no goroutine and no connection, so a
// deterministic simulation (tests, the research lab) can run many nodes in
// one goroutine and cut, delay or partition any session at any message.
// [Conn] runs a session over a stream (TCP or an in-memory pipe) with
// length-prefixed frames, size limits and deadlines; [Engine] decides when
// and with whom to sync.
//
// # Protocol
//
// A session runs over one stream. The dialer sends Hello (protocol
// version, cluster id, node id, role, scope); the listener answers Welcome
// (the same, or a refusal with a reason and a retry delay). Each side then
// sends Have: for every origin, the set of that origin's sequence numbers it
// holds (a contiguous prefix and ranges above it). Each side computes what
// the other lacks and streams it in Chunks of at most [MaxChunkBytes]:
// writes in HLC order (which is causal order), and Empty ranges: sequence
// numbers the receiver needs nothing for, because the writes are outside
// its scope or were overwritten and elided. The receiver applies each
// chunk in one atomic batch and answers Ack; at most [Window] chunks are
// unacknowledged (backpressure). A write whose origin's previous write to
// the same record the receiver lacks (a record entering its scope) makes
// the receiver ask for the whole record (RecordReq) and merge it. When a
// side has sent everything it says Done; the session ends when both have.
// A cut session loses nothing: every applied chunk is durable and marks
// its sequence numbers held, so the next session's Have starts after it.
//
// # Partial replicas
//
// A replica never believes it holds what it does not: a sequence number is
// held only when its write was applied, or when a sender declared it
// empty for the receiver's scope. A sender declares a sequence number empty
// only if it holds that write and the record is outside the receiver's
// scope, or it holds the number as empty itself and its own scope covers
// the receiver's. So a narrow replica never makes a wider one skip writes.
package replication
