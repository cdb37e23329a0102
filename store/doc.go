// Package store is replicad's durable state on Pebble
// (github.com/cockroachdb/pebble/v2): record states as the crdt package
// defines them, the change log by (origin, sequence), per-origin holdings,
// a local change feed, node metadata, and the bookkeeping of sync and
// policy (peer sync state, parked writes, the sync-error log, conflicts,
// tombstones). It knows nothing of merge policy beyond calling crdt.
//
// # Contract
//
// The concrete type is [*Store], opened with [Open]; consumers (sync,
// policy, daemon) declare the small interfaces they need over its methods.
// Every method is safe for concurrent use. Unless a method says otherwise,
// returned slices, maps, records and writes belong to the caller, and
// values passed in (field values, writes) are kept by the store and must
// not be modified afterwards. Errors are the sentinels of errors.go,
// wrapped with context: test them with errors.Is. A stored value that does
// not decode is a [*CorruptError] (ErrCorrupt) naming its key, never a
// panic. After an I/O error on a write the store is failed (ErrFailed from
// every call until it is closed and reopened); reopening recovers exactly
// the durable state.
//
// Hooks (functions handed to the write paths: WriteWith, WriteDecided,
// ApplyRemoteWith, MergeRecordWith, Update) run under the store's write
// mutex, read through their [Batch] ([Batch.Get]) and must not call Store
// methods that write; one that fails or panics aborts its call and leaves
// the store serving (hook.go, [ErrHookPanic]).
//
// # Atomicity and durability
//
// Each local write ([Store.Write]) and each call of [Store.ApplyRemote] is
// one Pebble batch holding the record states, the change-log entries, the
// holdings of each origin touched, the feed entries, the tombstone
// bookkeeping and the HLC high-water mark, and whatever a hook adds
// ([Batch]). Pebble applies a batch atomically, before and after a crash.
//
// A write returns only once its batch is durable (fsynced) unless
// Options.NoSync is set (tests and benchmarks only: an acknowledged write
// may then be lost in a crash, but never half of one).
//
// # Group commit
//
// Writers build their batch under the store's mutex (which orders local
// sequence numbers) and hand it to Pebble with DB.ApplyNoSyncWait while
// still holding the mutex, so WAL order equals sequence order; they then
// release the mutex and wait for the fsync (Batch.SyncWait). Pebble's WAL
// writer syncs everything written so far in one fsync, so concurrent
// writers share fsyncs: throughput grows with concurrency instead of
// staying at one write per fsync, and each writer still waits for the
// fsync that covers its own batch. The trade-off: a single writer gets no
// benefit (one fsync per write, ~0.3 ms on the reference machine), and a
// write's latency includes waiting for an fsync that may have started
// before its batch was written. A caller that needs more throughput from
// one goroutine should apply many writes per batch (ApplyRemote) rather
// than use NoSync.
//
// # Crash argument
//
// A batch handed to ApplyNoSyncWait is published (visible to reads that
// start afterwards) before its fsync completes; Pebble's commit pipeline
// publishes batches in WAL order. So writer N+1 may read writer N's record
// state before N is durable, and build on it. That is safe because N+1's
// batch is after N's in the WAL: recovery replays a prefix of the WAL, so
// a crash never keeps a later batch without every earlier one, and N+1 is
// only acknowledged after an fsync that covers N too. What a crash can
// take back is only unacknowledged writes, whole. Two things must not
// leak before they are durable, since their numbers would be reused after
// a crash: this node's own writes ([Store.Stream] of our own origin stops
// at the last durable sequence) and feed positions ([Store.Feed] stops at
// the durable head). Holdings and record reads may show a write whose
// fsync is in progress; a peer that learns of it loses nothing if it is
// taken back (it is resent or superseded). If an fsync fails, the batch
// may already be visible, so the store refuses everything (ErrFailed)
// until reopened. A failed write or sync of a log file fails the store at
// once (walerr.go): no batch is handed to Pebble's dead log writer.
//
// Pebble calls its logger's Fatalf when it cannot continue (for example
// after a WAL write error) and its code assumes Fatalf does not return;
// the store's logger adapter logs and panics, and foreground calls recover
// that panic into ErrFailed. A Fatalf on a Pebble background goroutine
// (MANIFEST write failure) still ends the process; the data on disk is
// then crash-consistent.
//
// # Encryption at rest
//
// With Options.EncryptionKey every value is sealed with AES-256-GCM (the
// Pebble key as additional data) when it is written and opened when it is
// read; keys stay plain. A plain store opened with a key is migrated
// (rewritten sealed in bounded batches, resumed after a crash, then
// compacted); an encrypted store opened without its key fails with
// ErrKeyRequired, with another key ErrWrongKey. See cipher.go and
// migrate.go.
//
// # Layout
//
// Keys start with a one-byte prefix; integers are 8-byte big-endian so
// they sort. Values of the store's own types are msgpack (ugorji/go/codec);
// records and writes use crdt's encodings. See LAYOUT.md for the full
// table:
//
//	m<name>                       node metadata: magic, format, node, cluster, hlc
//	r<table>\x00<id>              record state (crdt.Record.AppendBinary)
//	l<origin:8><seq:8>            change log (crdt.AppendWrite; Elided by CompactLog)
//	o<origin:8>                   holdings of origin (Held as [contig, lo, hi, ...])
//	g<origin:8><lo:8>             a declared-empty range [lo, hi] (value: hi)
//	f<feed:8>                     local change feed: [origin, seq, table, id]
//	k<origin:8><seq:8>            parked write
//	p<peer:8><table>              peer sync state
//	e<id:8>                       sync-error log entry
//	c<table>\x00<id>\x00<field>   conflict awaiting a choice
//	t<table>\x00<id>              tombstone
//	z<table>\x00<id>              causal context of a collected record
package store
