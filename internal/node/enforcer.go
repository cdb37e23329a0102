package node

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// SystemPolicy is the policy named by the sync error of a write refused
// by the system tables' rules.
const SystemPolicy = "system"

// EnforcerHost is what the enforcer needs of the node it runs on: the
// node's store, write pipeline and sync errors (a *Node) with a logger.
type EnforcerHost interface {
	Store() *store.Store
	Log() hclog.Logger
	WriteDecided(table, id string, decide func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool), also LocalHook) (*store.WriteResult, error)
	PublishSyncError(id string, e *store.SyncError) error
}

// Judge returns why a remote write (sent by from) may not be made by its
// origin, "" if it may; system says the refusal is by the system tables'
// rules (SysJudge), not by permissions.
type Judge func(from replication.Peer, w *crdt.Write) (reason string, system bool)

// Enforcer applies a judge of remote writes on this node (the agent's
// permission rules; on every hub, the system tables' rules: SysJudge): a
// write its judge refuses is elided before it is applied
// (its sequence number is kept, so the origin's later writes still apply;
// its values are stored and relayed nowhere), then the node writes back
// what the write would have replaced (a write whose context covers it, so
// that the origin, which applied its own write, converges too) and logs a
// sync error naming the origin, which reaches that device through
// _replicad_errors.
//
// The write-back is durable with the skeleton: it is queued (the store's
// work queue, as the policy arbiter's decisions are) in the batch that
// applies the skeleton, and carried out as the local write whose batch
// dequeues it; entries left by a crash are carried out at start (replay).
type Enforcer struct {
	judge Judge
	h     EnforcerHost

	mu       sync.Mutex
	rejected map[crdt.Dot]rejection // elided, not yet applied
	queued   map[crdt.Dot]uint64    // applied as skeletons: the queued write-back
	drainMu  sync.Mutex             // one carry-out at a time

	// HoldWriteBacks leaves write-backs queued (tests: a crash between
	// the skeleton's batch and the write-back).
	HoldWriteBacks atomic.Bool
}

// NewEnforcer returns the enforcer of judge on h. Set Admit as the
// engine's replication.Local.Admit, and register Hook (an apply hook)
// and Applied (an observer of remote batches) on the node; call Replay
// at start, before any session.
func NewEnforcer(h EnforcerHost, judge Judge) *Enforcer {
	return &Enforcer{judge: judge, h: h, rejected: map[crdt.Dot]rejection{}, queued: map[crdt.Dot]uint64{}}
}

type rejection struct {
	w      *crdt.Write // the original write
	reason string
	system bool // refused by the system tables' rules (SysJudge)
	// before is the record as this replica held it before the skeleton
	// was applied (nil if absent): an elided write still supersedes what
	// its context covers, so the values to write back are read first.
	before *crdt.Record
}

// WriteBackQueue is the store's work queue of the enforcer's write-backs
// (the arbiter's decisions have their own).
const WriteBackQueue store.QueueName = 'p'

// LegacyPrefix started the enforcer's entries in the one work queue
// older versions shared with the arbiter (whose entries are JSON objects):
// a byte no JSON text starts with. Such entries are moved to the named
// queues at start (the assembly's migration).
const LegacyPrefix = "\x01perm"

// Compensation is a write-back as queued: what to write over the
// rejected write, and the sync error to record.
type Compensation struct {
	Table, ID string
	Origin    uint64 // the rejected write
	Seq       uint64
	Fields    []crdt.FieldValue
	Delete    bool
	// After is the record's applied vector (flattened node, seq pairs)
	// once the skeleton's batch was applied: a field (or the existence)
	// that a write outside it has changed since is left to that write.
	After  []uint64
	Reason string
	Error  *store.SyncError
}

// Admit returns writes with each write its judge refuses replaced by its
// elided skeleton (same length and order). from sent them.
func (e *Enforcer) Admit(from replication.Peer, writes []*crdt.Write) []*crdt.Write {
	var out []*crdt.Write
	for i, w := range writes {
		reason, system := e.judge(from, w)
		if reason == "" {
			continue
		}
		if out == nil {
			out = append([]*crdt.Write(nil), writes...)
		}
		out[i] = w.Elide()
		before, err := e.h.Store().GetAny(w.Table, w.ID)
		if err != nil {
			before = nil
		}
		e.mu.Lock()
		e.rejected[w.Dot()] = rejection{w: w, reason: reason, system: system, before: before}
		e.mu.Unlock()
	}
	if out == nil {
		return writes
	}
	return out
}

// Hook runs inside the batch that applies remote writes (an apply hook of
// the node): it queues the
// write-back of every rejected write applied (as a skeleton) in it.
func (e *Enforcer) Hook(b *store.Batch, writes []*crdt.Write, res *store.Result) error {
	e.mu.Lock()
	none := len(e.rejected) == 0
	e.mu.Unlock()
	if none {
		return nil // the common case: nothing rejected
	}
	for i, w := range writes {
		if i >= len(res.Status) || res.Status[i] != store.Applied {
			continue
		}
		e.mu.Lock()
		rj, ok := e.rejected[w.Dot()]
		e.mu.Unlock()
		if !ok {
			continue
		}
		qc := compensation(rj)
		if qc == nil {
			continue
		}
		if rec := res.Records[w.Table+"\x00"+w.ID]; rec != nil {
			qc.After = vvFlat(rec.Applied)
		}
		data, err := json.Marshal(qc)
		if err != nil {
			return err
		}
		id := b.EnqueueIn(WriteBackQueue, data)
		e.mu.Lock()
		e.queued[w.Dot()] = id
		e.mu.Unlock()
	}
	return b.Err()
}

func vvFlat(v crdt.VV) []uint64 {
	out := make([]uint64, 0, 2*len(v))
	for _, d := range v {
		out = append(out, uint64(d.Node), d.Seq)
	}
	return out
}

func flatVV(f []uint64) crdt.VV {
	var v crdt.VV
	for i := 0; i+1 < len(f); i += 2 {
		v.Set(crdt.Dot{Node: hlc.NodeID(f[i]), Seq: f[i+1]})
	}
	return v
}

// Applied is told of applied remote writes (an observer of the node's
// committed batches): it carries out the write-backs
// queued for the rejected ones.
func (e *Enforcer) Applied(_ hlc.NodeID, writes []*crdt.Write, res *store.Result) {
	var ids []uint64
	e.mu.Lock()
	for _, w := range writes {
		if id, ok := e.queued[w.Dot()]; ok {
			ids = append(ids, id)
			delete(e.queued, w.Dot())
		}
		// Rejections of writes that were not applied (duplicates,
		// deferred) are forgotten: a deferred write is judged again when
		// it returns.
		delete(e.rejected, w.Dot())
	}
	e.mu.Unlock()
	if len(ids) > 0 && !e.HoldWriteBacks.Load() {
		if err := e.drain(ids); err != nil {
			e.h.Log().Error("writing back over refused writes failed (retried at start)", "error", err)
		}
	}
}

// Replay carries out the write-backs a crash left queued.
func (e *Enforcer) Replay() error { return e.drain(nil) }

// drain carries out the queued write-backs with the given queue ids (nil:
// every one queued).
func (e *Enforcer) drain(ids []uint64) error {
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	qs, err := e.h.Store().QueueOf(WriteBackQueue, -1)
	if err != nil {
		return err
	}
	want := map[uint64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, q := range qs {
		if ids != nil && !want[q.ID] {
			continue
		}
		var qc Compensation
		if err := json.Unmarshal(q.Value, &qc); err != nil || qc.Error == nil {
			e.h.Log().Error("dropping an undecodable queued write-back", "id", q.ID, "error", err)
			if err := e.h.Store().Update(func(b *store.Batch) error { b.DequeueFrom(WriteBackQueue, q.ID); return b.Err() }); err != nil {
				return err
			}
			continue
		}
		if err := e.CarryOut(q.ID, &qc); err != nil {
			return fmt.Errorf("write-back over %s:%d on %s/%s: %w", hlc.NodeID(qc.Origin), qc.Seq, qc.Table, qc.ID, err)
		}
	}
	return nil
}

// compensation computes the write-back over a rejected write from the
// record as it was before (nil: nothing to write back or log).
func compensation(rj rejection) *Compensation {
	w, rec := rj.w, rj.before
	losing := map[string][]byte{}
	winning := map[string][]byte{}
	var fields []crdt.FieldValue
	var names []string
	del := false
	switch {
	case rec == nil || !rec.Exists():
		// The record does not exist here: the origin created it (or wrote
		// to a deleted record); delete it over the write.
		del = true
		for _, f := range w.Fields {
			names = append(names, f.Name)
			losing[f.Name] = f.Value
		}
	case w.Delete:
		// Restore every visible field.
		rec.Visible(func(name string, v crdt.Value) {
			fields = append(fields, crdt.FieldValue{Name: name, Value: v})
			names = append(names, name)
			winning[name] = v
		})
		if len(fields) == 0 {
			return nil
		}
	default:
		for _, f := range w.Fields {
			v, ok := rec.Get(f.Name)
			if !ok {
				v = crdt.Cleared
			}
			fields = append(fields, crdt.FieldValue{Name: f.Name, Value: v})
			names = append(names, f.Name)
			losing[f.Name] = f.Value
			if ok {
				winning[f.Name] = v
			}
		}
	}
	pol := "permission"
	if rj.system {
		pol = SystemPolicy
	}
	se := &store.SyncError{Time: time.Now().UnixMilli(), Table: w.Table, Record: w.ID, Fields: names, Losing: losing, Winning: winning,
		Policy: pol, Kind: KindRejected, Nodes: []uint64{uint64(w.Origin)}, Detail: "rejected: " + rj.reason}
	return &Compensation{Table: w.Table, ID: w.ID, Origin: uint64(w.Origin), Seq: w.Seq, Fields: fields, Delete: del, Reason: rj.reason, Error: se}
}

// CarryOut makes the write-back of queue entry id as a local write whose
// batch dequeues it and records the sync error, narrowed, under the
// store's write mutex, to the fields no write has changed since the
// skeleton was applied; the error is published in _replicad_errors first
// (an id derived from the rejected write: a second attempt after a crash
// writes the same record).
func (e *Enforcer) CarryOut(id uint64, qc *Compensation) error {
	w := crdt.Dot{Node: hlc.NodeID(qc.Origin), Seq: qc.Seq}
	if err := e.h.PublishSyncError(fmt.Sprintf("perm-%s-%d", w.Node, w.Seq), qc.Error); err != nil {
		return err
	}
	fill := func(b *store.Batch) error {
		b.DequeueFrom(WriteBackQueue, id)
		b.AppendSyncError(qc.Error)
		return b.Err()
	}
	after := flatVV(qc.After)
	unchanged := func(es []crdt.Entry) bool {
		if qc.After == nil {
			return true
		}
		for _, en := range es {
			if !after.Covers(en.Dot()) {
				return false
			}
		}
		return true
	}
	res, err := e.h.WriteDecided(qc.Table, qc.ID, func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
		if rec == nil {
			rec = &crdt.Record{}
		}
		if qc.Delete {
			return nil, true, unchanged(rec.Exist)
		}
		var fs []crdt.FieldValue
		for _, f := range qc.Fields {
			if unchanged(rec.Candidates(f.Name)) {
				fs = append(fs, f)
			}
		}
		return fs, false, len(fs) > 0
	}, func(b *store.Batch, _ *store.WriteResult) error { return fill(b) })
	if err != nil {
		return err
	}
	if qc.Error.Policy == SystemPolicy {
		// Logged, rate-limited, when it was refused (SysJudge).
		e.h.Log().Debug("written back over a refused system-table write", "origin", w.Node, "seq", w.Seq, "table", qc.Table, "id", qc.ID)
	} else {
		e.h.Log().Warn("write rejected by permissions", "origin", w.Node, "seq", w.Seq, "table", qc.Table, "id", qc.ID, "reason", qc.Reason)
	}
	if res == nil {
		// Later writes changed everything it would write back: only the
		// bookkeeping.
		return e.h.Store().Update(fill)
	}
	return nil
}
