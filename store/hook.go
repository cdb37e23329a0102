package store

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/replicad/replicad/crdt"
)

// Hooks.
//
// A hook is a function the caller gives a write path to run inside it:
// the hook of [Store.WriteWith], [Store.WriteDecided],
// [Store.ApplyRemoteWith] and [Store.MergeRecordWith], the decide
// function of WriteDecided, and the fill function of [Store.Update]. What
// a hook gets:
//
//   - It runs on the caller's goroutine with the store's write mutex held:
//     no other write, merge, collection or bookkeeping call of this store
//     runs until it returns, so nothing but its own batch changes what it
//     reads.
//   - It reads through its batch ([Batch.Get], [Batch.Hidden],
//     [Batch.HiddenSkipped]): the records as this batch leaves them (the
//     state the batch writes for a record it changes, not found for one
//     it collected or purged, the hidden marks counting its hides and
//     shows, the committed state otherwise), which is exactly what
//     readers see once the batch commits. Records it gets are its own
//     copies.
//   - It adds keys through the Batch's methods; they commit atomically with
//     the write, or not at all.
//   - If it returns an error or panics, nothing of the call is committed
//     (not the write, not the keys the hook added), the write mutex is
//     released, the store keeps serving, and the call returns the error (a
//     panic as a *[HookPanicError], ErrHookPanic). What the hook changed
//     outside the batch (its own memory) is its own to undo.
//
// What a hook must not do: call a Store method that takes the write mutex
// (it would deadlock on the mutex its own call holds): every method that
// writes (local and remote writes, merges, Update, the bookkeeping
// methods, RaiseGCHorizon, Collect, CompactLog) and a few that read the
// writers' state (HighWater, ParkedCount, RecordCacheBytes, Verify,
// Close); keep the Batch or a record it was given after it returns; or
// modify a record it was given (WriteResult.Record, Result.Records, the
// merged record, the record decide sees). Store's read methods (Get,
// Scan, HiddenSkipped, ...) do not take the write mutex, but they show
// the committed state without this batch's changes: a hook reads through
// the Batch instead.

// ErrHookPanic: a hook panicked; nothing of the call was committed. Errors
// wrapping it are *HookPanicError.
var ErrHookPanic = errors.New("store: hook panicked")

// HookPanicError is a panic recovered from a hook: the call that ran it
// committed nothing and returned this error. It wraps ErrHookPanic.
type HookPanicError struct {
	Value any    // what the hook panicked with
	Stack []byte // the hook's goroutine stack at the panic
}

func (e *HookPanicError) Error() string {
	return fmt.Sprintf("%v: %v\n%s", ErrHookPanic, e.Value, e.Stack)
}

// Is makes errors.Is(err, ErrHookPanic) true.
func (e *HookPanicError) Is(target error) bool { return target == ErrHookPanic }

// runHook calls f, a caller's hook, turning a panic into a
// *HookPanicError. Caller holds s.mu and releases it with defer, so the
// store keeps serving whatever f does.
func runHook(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &HookPanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// pending is a batch handed to Pebble whose fsync its writer waits for
// once it has released the write mutex (group commit: see submit).
type pending struct {
	b    *Batch
	wait func() error
}

// done waits for the fsync that covers the batch, then releases it.
func (p *pending) done() error {
	defer p.b.close()
	return p.wait()
}

// Get returns table/id as this batch leaves it so far, for hooks (see
// the package documentation): for a record the batch writes, the state it
// writes; ErrNotFound for a record it collected or purged, or that does
// not exist; ErrOutOfScope for a record hidden here (counting the hides
// of this batch) as Store.Get does; else the committed state, which
// nothing but this batch can change while the write mutex is held
// (committed reads are kept for the batch's life). The record is the
// caller's.
func (b *Batch) Get(table, id string) (*crdt.Record, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	if b.Hidden(table, id) {
		return nil, fmt.Errorf("%w: record %s/%q", ErrOutOfScope, table, id)
	}
	return b.getAny(table, id)
}

// getAny is Get including hidden records.
func (b *Batch) getAny(table, id string) (*crdt.Record, error) {
	name := table + "\x00" + id
	rkey := recordKey(nil, table, id)
	if b.collected[string(rkey)] {
		return nil, fmt.Errorf("%w: record %s/%q", ErrNotFound, table, id)
	}
	for i := len(b.hides) - 1; i >= 0; i-- {
		if op := b.hides[i]; op.key == name {
			if op.purge {
				return nil, fmt.Errorf("%w: record %s/%q", ErrNotFound, table, id)
			}
			break
		}
	}
	if rec, ok := b.recs[name]; ok {
		return rec.Clone(), nil
	}
	rec, ok := b.reads[name]
	if !ok {
		var found bool
		var err error
		rec, found, err = b.s.readRecord(rkey)
		if err != nil {
			return nil, err
		}
		if !found {
			rec = nil
		}
		if b.reads == nil {
			b.reads = map[string]*crdt.Record{}
		}
		b.reads[name] = rec
	}
	if rec == nil {
		return nil, fmt.Errorf("%w: record %s/%q", ErrNotFound, table, id)
	}
	return rec.Clone(), nil
}

// Hidden reports whether table/id is hidden here (out of this replica's
// scope) once this batch commits, for hooks.
func (b *Batch) Hidden(table, id string) bool {
	name := table + "\x00" + id
	for i := len(b.hides) - 1; i >= 0; i-- {
		if op := b.hides[i]; op.key == name {
			return op.hide
		}
	}
	return b.s.isHidden(table, id)
}

// HiddenSkipped is Store.HiddenSkipped as this batch leaves table/id,
// for hooks: the writes skipped for it while hidden, counting this
// batch's hides, shows, purges and collections (ok false: not hidden once
// the batch commits). The version vector is the caller's.
func (b *Batch) HiddenSkipped(table, id string) (skipped crdt.VV, ok bool) {
	name := table + "\x00" + id
	for i := len(b.hides) - 1; i >= 0; i-- {
		if op := b.hides[i]; op.key == name {
			if !op.hide {
				return nil, false
			}
			return op.skipped.Clone(), true
		}
	}
	return b.s.HiddenSkipped(table, id)
}

// wrote notes that this batch writes rec as table\x00id's state (Get
// returns it; CollectRecord checks it).
func (b *Batch) wrote(name string, rec *crdt.Record) {
	if b.recs == nil {
		b.recs = map[string]*crdt.Record{}
	}
	b.recs[name] = rec
}
