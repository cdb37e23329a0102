package store

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
)

// Batch is a write batch under construction. The store builds one for each
// local write, each ApplyRemote call and each bookkeeping call; hooks given
// to [Store.WriteWith] and [Store.ApplyRemoteWith] receive it so the policy
// layer can add its bookkeeping (conflicts, sync errors, tombstones, peer
// state) to the same atomic, durable commit, and read the records as the
// batch leaves them ([Batch.Get]; see hook.go for what a hook may do). A
// Batch is only valid during the call that hands it out, and is not safe
// for concurrent use. Its methods record the first error and return it
// from Err; the owning call then fails and commits nothing.
type Batch struct {
	s         *Store
	b         *pebble.Batch
	hides     []hideOp
	collected map[string]bool // record keys removed by CollectRecord
	// recs are the records this batch writes (local writes, remote
	// batches, merges), by table\x00id: Get returns them, and
	// CollectRecord leaves alone one still holding values concurrent with
	// its delete.
	recs map[string]*crdt.Record
	// reads are the committed records Get read (nil: none), by
	// table\x00id.
	reads  map[string]*crdt.Record
	qSeq   uint64 // queue ids allocated so far
	err    error
	errSeq uint64 // sync-error ids allocated so far
	now    func() time.Time
	buf    []byte
	ixRev  map[string]revState // index reverse entries this batch set (index.go)
}

func (s *Store) newBatch() *Batch {
	return &Batch{s: s, b: s.db.NewBatch(), errSeq: s.errSeq, qSeq: s.qSeq, now: time.Now}
}

type hideOp struct {
	key     string // table\x00id
	hide    bool
	purge   bool
	skipped crdt.VV
}

// A hidden-record key whose state was removed holds 0xff, then the
// writes skipped for it (a flattened version vector, msgpack), if any.
func isPurgeMark(v []byte) bool { return len(v) >= 1 && v[0] == 0xff }

// Purge removes table/id's state from this replica, keeping it hidden:
// it is confirmed outside this replica's scope by a replica that holds
// the whole table. Its writes stay in the log and held. If it comes back
// into scope, it arrives whole again.
func (b *Batch) Purge(table, id string, skipped crdt.VV) {
	if b.err != nil {
		return
	}
	cur, _ := b.s.hiddenSkipped(table, id)
	for _, op := range b.hides {
		if op.key == table+"\x00"+id {
			cur = op.skipped
		}
	}
	vv := cur.Clone()
	vv.Join(skipped)
	b.del(recordKey(nil, table, id))
	b.s.rcache.drop(recordKey(nil, table, id))
	b.del(conflictIdxKey(recordKey(nil, table, id)))
	b.indexFields(recordKey(nil, table, id), nil)
	b.del(tombKey(table, id))
	b.del(mergedKey(table, id))
	b.deleteBases(table, id)
	k := recordKey(nil, table, id)
	k[0] = pHidden
	mark := []byte{0xff}
	if len(vv) > 0 {
		enc, err := encodeValue(nil, flatVV(vv))
		if err != nil {
			b.err = err
			return
		}
		mark = append(mark, enc...)
	}
	b.set(k, mark)
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id, hide: true, purge: true, skipped: vv})
}

// SetHidden hides table/id (it left this replica's scope: reads report
// ErrOutOfScope and Scan skips it, while its state is kept so that it
// merges correctly if it comes back) or shows it again. skipped, when
// hiding, is joined into the record's skipped writes (see
// Store.HiddenSkipped).
func (b *Batch) SetHidden(table, id string, hidden bool, skipped crdt.VV) {
	if b.err != nil {
		return
	}
	cur, was := b.s.hiddenSkipped(table, id)
	for _, op := range b.hides { // earlier in this batch
		if op.key == table+"\x00"+id {
			cur, was = op.skipped, op.hide
		}
	}
	if !hidden && !was {
		return
	}
	k := recordKey(nil, table, id)
	k[0] = pHidden
	if !hidden {
		b.del(k)
		b.hides = append(b.hides, hideOp{key: table + "\x00" + id})
		return
	}
	vv := cur.Clone()
	vv.Join(skipped)
	b.s.hidmu.RLock()
	wasPurged := b.s.purged[table+"\x00"+id]
	b.s.hidmu.RUnlock()
	for _, op := range b.hides {
		if op.key == table+"\x00"+id {
			wasPurged = op.purge
		}
	}
	if was && vv.Equal(cur) && !wasPurged {
		return
	}
	b.setEncoded(k, flatVV(vv))
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id, hide: true, skipped: vv})
}

// CollectRecord removes table/id's state with its tombstone, merge and
// hidden marks (a deleted record under the tombstone horizon; see
// Store.Collect), keeping its causal context (collected.go), in this
// batch; not a record this batch writes that still holds values
// concurrent with its delete (see collectable).
func (b *Batch) CollectRecord(table, id string) {
	if b.err != nil {
		return
	}
	rec, ok := b.recs[table+"\x00"+id]
	if ok && !collectable(rec) {
		return
	}
	rkey := recordKey(nil, table, id)
	if !ok {
		var found bool
		var err error
		if rec, found, err = b.s.readRecord(rkey); err != nil {
			b.err = err
			return
		} else if !found {
			rec = nil
		}
	}
	// What this replica had seen of the record, for its next local write
	// (collected.go).
	b.keepCollectedContext(table, id, rec)
	b.del(rkey)
	b.del(conflictIdxKey(rkey))
	b.indexFields(rkey, nil)
	b.del(tombKey(table, id))
	b.del(mergedKey(table, id))
	b.deleteBases(table, id)
	xk := recordKey(nil, table, id)
	xk[0] = pHidden
	b.del(xk)
	b.hides = append(b.hides, hideOp{key: table + "\x00" + id})
	b.s.rcache.drop(rkey)
	if b.collected == nil {
		b.collected = map[string]bool{}
	}
	b.collected[string(rkey)] = true
}

// Err returns the first error a method of b met.
func (b *Batch) Err() error { return b.err }

// set puts key = val in the batch, val sealed when the store is
// encrypted (straight into the batch's buffer: no copy, no allocation).
func (b *Batch) set(key, val []byte) {
	if b.err != nil {
		return
	}
	if c := b.s.ciph; c != nil {
		// Sealed in place in the batch, with the batch's copy of the key
		// as additional data: neither key nor val escapes (as with Set).
		op := b.b.SetDeferred(len(key), sealOverhead+len(val))
		copy(op.Key, key)
		copy(op.Value[1+nonceSize:], val)
		if b.err = c.sealInPlace(op.Value, op.Key, len(val)); b.err == nil {
			b.err = op.Finish()
		}
		return
	}
	b.err = b.b.Set(key, val, nil)
}

// setPlain puts key = val unsealed: only the values Open reads before it
// knows the key (m"magic", m"format", m"atrest"; see isBootstrap).
func (b *Batch) setPlain(key, val []byte) {
	if b.err == nil {
		b.err = b.b.Set(key, val, nil)
	}
}

func (b *Batch) del(key []byte) {
	if b.err == nil {
		b.err = b.b.Delete(key, nil)
	}
}

func (b *Batch) setEncoded(key []byte, v any) {
	if b.err != nil {
		return
	}
	val, err := encodeValue(b.buf[:0], v)
	if err != nil {
		b.err = err
		return
	}
	b.set(key, val)
	b.buf = val
}

func (b *Batch) close() {
	if b != nil && b.b != nil {
		_ = b.b.Close()
		b.b = nil
	}
}

// submit hands b to Pebble. Without NoSync it uses ApplyNoSyncWait with
// Sync set: the batch is written to the WAL and applied to the memtable,
// and is visible to every read that starts after submit returns (Pebble's
// commit pipeline publishes batches in WAL order before returning; see
// the comment on DB.ApplyNoSyncWait: "the mutation is applied to the
// memtable and is visible"), but the fsync may still be in progress. The
// caller, once it has released the store's mutex, calls the returned wait
// to block until the fsync that covers the batch completes. Concurrent
// writers' batches thus share fsyncs (group commit).
//
// Any error or Pebble panic marks the store failed: a batch may already be
// visible while its fsync failed, so nothing more is trusted until a
// reopen replays exactly what is durable. A store failed already (a log
// write or sync failed: walerr.go) hands Pebble nothing.
func (s *Store) submit(b *Batch) (wait func() error, err error) {
	b.countScope() // boots.go
	if b.err != nil {
		return nil, b.err
	}
	if err := s.usable(); err != nil {
		return nil, err // a dead log is never handed a batch (walerr.go)
	}
	if s.testHookBatch != nil {
		s.testHookBatch(b.b.Repr())
	}
	defer func() {
		if r := recover(); r != nil {
			wait, err = nil, s.failWith(fmt.Errorf("pebble: %v", r))
		}
	}()
	if s.opts.NoSync {
		if err := s.db.Apply(b.b, pebble.NoSync); err != nil {
			return nil, s.failWith(err)
		}
		s.countedScope(b)
		flush := s.noteWAL(len(b.b.Repr()))
		return func() error {
			if flush {
				s.flushWAL()
			}
			return nil
		}, nil
	}
	if err := s.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
		return nil, s.failWith(err)
	}
	s.countedScope(b)
	flush := s.noteWAL(len(b.b.Repr())) // the flush waits for the sync (disk.go, flushWAL)
	pb := b.b
	return func() error {
		if err := pb.SyncWait(); err != nil {
			return s.failWith(fmt.Errorf("wal sync: %w", err))
		}
		if flush {
			s.flushWAL()
		}
		return nil
	}, nil
}

// commitNow commits a batch synchronously (metadata at Open, migration)
// and closes it. Caller holds s.mu (or has exclusive access during Open).
func (s *Store) commitNow(bb *Batch) error {
	defer bb.close()
	wait, err := s.submit(bb)
	if err != nil {
		return err
	}
	return wait()
}

// publish makes what a batch handed to Pebble allocated or marked the
// store's in-memory state: sync-error and queue ids, hidden marks. Caller
// holds s.mu, after submit succeeded.
func (s *Store) publish(b *Batch) {
	s.errSeq = b.errSeq
	s.qSeq = b.qSeq
	s.applyHidden(b.hides)
	s.noteScope(b.hides)
	s.publishIndexRev(b)
}

// commitBook runs fill on a fresh batch under the write mutex and commits
// it durably. Used by the bookkeeping methods and Update; fill runs as a
// hook (hook.go).
func (s *Store) commitBook(fill func(b *Batch) error) error {
	p, err := s.commitBookLocked(fill)
	if err != nil {
		return err
	}
	return p.done()
}

// commitBookLocked is commitBook up to the fsync wait, under s.mu.
func (s *Store) commitBookLocked(fill func(b *Batch) error) (*pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	b := s.newBatch()
	if err := runHook(func() error { return fill(b) }); err != nil {
		b.close()
		return nil, err
	}
	return s.submitPublish(b)
}

// submitPublish hands b to Pebble and publishes what it allocated
// (publish); on success the caller waits with done (which releases b)
// once it has released s.mu, on error b is released. Caller holds s.mu.
func (s *Store) submitPublish(b *Batch) (*pending, error) {
	wait, err := s.submit(b)
	if err != nil {
		b.close()
		return nil, err
	}
	s.publish(b)
	return &pending{b: b, wait: wait}, nil
}
