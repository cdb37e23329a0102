package agent

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// systemPolicy is the policy named by the sync error of a write refused
// by the system tables' rules (systables.go).
const systemPolicy = "system"

// rule is a compiled Permission.
type rule struct {
	name   string
	nodes  []config.NodeMatch
	tables map[string]bool            // whole tables
	fields map[string]map[string]bool // table -> fields

	readSet    bool                       // the rule restricts reads
	readTables map[string]bool            // whole tables readable
	readFields map[string]map[string]bool // table -> readable fields
}

// permissions are the compiled rules.
type permissions struct {
	rules []rule
}

func compilePermissions(ps []Permission) (*permissions, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	if err := config.CheckPermissions(ps); err != nil {
		return nil, err
	}
	out := &permissions{}
	for _, p := range ps {
		r := rule{name: p.Name, tables: map[string]bool{}, fields: map[string]map[string]bool{},
			readSet: p.ReadSet || len(p.Read) > 0, readTables: map[string]bool{}, readFields: map[string]map[string]bool{}}
		for _, n := range p.Nodes {
			m, _ := config.ParseNodeMatch(n) // checked
			r.nodes = append(r.nodes, m)
		}
		config.AddTableFields(p.Write, r.tables, r.fields)
		config.AddTableFields(p.Read, r.readTables, r.readFields)
		out.rules = append(out.rules, r)
	}
	return out, nil
}

// check returns why origin may not make w, or "" if it may.
func (p *permissions) check(w *crdt.Write) string {
	if p == nil {
		return ""
	}
	var matched []string
	var denied []string
	for _, r := range p.rules {
		hit := false
		for _, m := range r.nodes {
			hit = hit || m.Matches(w.Origin)
		}
		if !hit {
			continue
		}
		matched = append(matched, r.name)
		if r.tables[w.Table] {
			return ""
		}
		if w.Delete || r.fields[w.Table] == nil {
			continue
		}
		ok := len(w.Fields) > 0
		for _, f := range w.Fields {
			if !r.fields[w.Table][f.Name] {
				ok = false
				denied = append(denied, f.Name)
			}
		}
		if ok {
			return ""
		}
	}
	if len(matched) == 0 {
		return ""
	}
	sort.Strings(denied)
	denied = compactStrings(denied)
	switch {
	case w.Delete:
		return fmt.Sprintf("node %s (permissions %s) may not delete records of table %s", w.Origin, strings.Join(matched, ", "), w.Table)
	case len(denied) > 0:
		return fmt.Sprintf("node %s (permissions %s) may not write field(s) %s of table %s", w.Origin, strings.Join(matched, ", "), strings.Join(denied, ", "), w.Table)
	}
	return fmt.Sprintf("node %s (permissions %s) may not write table %s", w.Origin, strings.Join(matched, ", "), w.Table)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// enforcer applies the permission rules to remote writes on this node: a
// write outside its origin's permissions is elided before it is applied
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
type enforcer struct {
	perms *permissions // nil: no rules
	r     *replica
	// sys: also refuse the writes to system tables their origin may not
	// make (a hub: sysTables).
	sys bool

	mu       sync.Mutex
	rejected map[crdt.Dot]rejection // elided, not yet applied
	queued   map[crdt.Dot]uint64    // applied as skeletons: the queued write-back
	drainMu  sync.Mutex             // one carry-out at a time

	// holdWriteBacks leaves write-backs queued (tests: a crash between
	// the skeleton's batch and the write-back).
	holdWriteBacks atomic.Bool
}

func newEnforcer(perms *permissions, r *replica) *enforcer {
	return &enforcer{perms: perms, r: r, rejected: map[crdt.Dot]rejection{}, queued: map[crdt.Dot]uint64{}}
}

type rejection struct {
	w      *crdt.Write // the original write
	reason string
	system bool // refused by the system tables' rules (sysTables)
	// before is the record as this replica held it before the skeleton
	// was applied (nil if absent): an elided write still supersedes what
	// its context covers, so the values to write back are read first.
	before *crdt.Record
}

// writeBackQueue is the store's work queue of the permission write-backs
// (the arbiter's decisions have their own: arbiter.Queue).
const writeBackQueue store.QueueName = 'p'

// compensationPrefix started the enforcer's entries in the one work queue
// older versions shared with the arbiter (whose entries are JSON objects):
// a byte no JSON text starts with. Such entries are moved to the named
// queues at start (migrateQueue).
const compensationPrefix = "\x01perm"

func isCompensation(v []byte) bool { return strings.HasPrefix(string(v), compensationPrefix) }

// queuedCompensation is a write-back as queued: what to write over the
// rejected write, and the sync error to record.
type queuedCompensation struct {
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

// admit returns writes with each write outside its origin's permissions
// (or, on a hub, the rules of the system tables) replaced by its elided
// skeleton (same length and order). from sent them.
func (e *enforcer) admit(from replication.Peer, writes []*crdt.Write) []*crdt.Write {
	var out []*crdt.Write
	for i, w := range writes {
		reason := e.perms.check(w)
		system := false
		if reason == "" && e.sys {
			if reason = e.r.sysCheck(from, w); reason != "" {
				system = true
				e.r.sysLog.refused(from.Node, w.Origin, w.Table, w.ID, reason)
				e.r.a.metrics.sysRefused.Inc()
			}
		}
		if reason == "" {
			continue
		}
		if out == nil {
			out = append([]*crdt.Write(nil), writes...)
		}
		out[i] = w.Elide()
		before, err := e.r.store.GetAny(w.Table, w.ID)
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

// hook runs inside the batch that applies remote writes: it queues the
// write-back of every rejected write applied (as a skeleton) in it.
func (e *enforcer) hook(b *store.Batch, writes []*crdt.Write, res *store.Result) error {
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
		id := b.EnqueueIn(writeBackQueue, data)
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

// applied is told of applied remote writes: it carries out the write-backs
// queued for the rejected ones.
func (e *enforcer) applied(writes []*crdt.Write, res *store.Result) {
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
	if len(ids) > 0 && !e.holdWriteBacks.Load() {
		if err := e.drain(ids); err != nil {
			e.r.a.log.Error("permission: writing back over rejected writes failed (retried at start)", "error", err)
		}
	}
}

// replay carries out the write-backs a crash left queued.
func (e *enforcer) replay() error { return e.drain(nil) }

// drain carries out the queued write-backs with the given queue ids (nil:
// every one queued).
func (e *enforcer) drain(ids []uint64) error {
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	qs, err := e.r.store.QueueOf(writeBackQueue, -1)
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
		var qc queuedCompensation
		if err := json.Unmarshal(q.Value, &qc); err != nil || qc.Error == nil {
			e.r.a.log.Error("permission: dropping an undecodable queued write-back", "id", q.ID, "error", err)
			if err := e.r.store.Update(func(b *store.Batch) error { b.DequeueFrom(writeBackQueue, q.ID); return b.Err() }); err != nil {
				return err
			}
			continue
		}
		if err := e.carryOut(q.ID, &qc); err != nil {
			return fmt.Errorf("write-back over %s:%d on %s/%s: %w", hlc.NodeID(qc.Origin), qc.Seq, qc.Table, qc.ID, err)
		}
	}
	return nil
}

// compensation computes the write-back over a rejected write from the
// record as it was before (nil: nothing to write back or log).
func compensation(rj rejection) *queuedCompensation {
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
		pol = systemPolicy
	}
	se := &store.SyncError{Time: time.Now().UnixMilli(), Table: w.Table, Record: w.ID, Fields: names, Losing: losing, Winning: winning,
		Policy: pol, Kind: node.KindRejected, Nodes: []uint64{uint64(w.Origin)}, Detail: "rejected: " + rj.reason}
	return &queuedCompensation{Table: w.Table, ID: w.ID, Origin: uint64(w.Origin), Seq: w.Seq, Fields: fields, Delete: del, Reason: rj.reason, Error: se}
}

// carryOut makes the write-back of queue entry id as a local write whose
// batch dequeues it and records the sync error, narrowed, under the
// store's write mutex, to the fields no write has changed since the
// skeleton was applied; the error is published in _replicad_errors first
// (an id derived from the rejected write: a second attempt after a crash
// writes the same record).
func (e *enforcer) carryOut(id uint64, qc *queuedCompensation) error {
	w := crdt.Dot{Node: hlc.NodeID(qc.Origin), Seq: qc.Seq}
	if err := e.r.n.PublishSyncError(fmt.Sprintf("perm-%s-%d", w.Node, w.Seq), qc.Error); err != nil {
		return err
	}
	fill := func(b *store.Batch) error {
		b.DequeueFrom(writeBackQueue, id)
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
	res, err := e.r.n.WriteDecided(qc.Table, qc.ID, func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
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
	if qc.Error.Policy == systemPolicy {
		// Logged, rate-limited, when it was refused (sysLogger).
		e.r.a.log.Debug("written back over a refused system-table write", "origin", w.Node, "seq", w.Seq, "table", qc.Table, "id", qc.ID)
	} else {
		e.r.a.log.Warn("write rejected by permissions", "origin", w.Node, "seq", w.Seq, "table", qc.Table, "id", qc.ID, "reason", qc.Reason)
	}
	if res == nil {
		// Later writes changed everything it would write back: only the
		// bookkeeping.
		return e.r.store.Update(fill)
	}
	return nil
}
