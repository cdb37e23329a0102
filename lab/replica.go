package lab

import (
	"errors"
	"fmt"
	"sort"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// replica is one node's state in memory: records as crdt.Record values,
// the change log per origin, and the holdings. It implements
// replication.Store with the store's contract (see store.ApplyRemote and
// store.MergeRecord): duplicates are skipped, a write stamped beyond the
// clock bound is parked (not applied, not held: the sender sends it again
// in a later session), a write whose origin's previous write to the record
// is missing is deferred, and a whole-record merge holds nothing. What it
// leaves out is durability (Pebble, fsyncs), which a simulation does not
// need; see docs/lab.md for why.
type replica struct {
	node      hlc.NodeID
	hlcOn     bool // remote stamps advance the clock and far-ahead ones park
	recs      map[string]*crdt.Record
	log       map[hlc.NodeID][]*crdt.Write // index seq-1; nil where not held or held empty
	held      map[hlc.NodeID]store.Held
	heldCount int
	nextSeq   uint64
	lastTS    hlc.Timestamp // the last stamp of a local write (wall-clock strategies)

	// onHeld is told of every write the replica comes to hold, at once.
	onHeld func(w *crdt.Write)
	// parked counts writes parked (refused by the clock bound) so far.
	parked int
	// snap is the last Holdings answer, valid until the holdings change
	// (sessions only read it).
	snap map[hlc.NodeID]store.Held
}

var _ replication.Store = (*replica)(nil)

func newReplica(node hlc.NodeID, hlcOn bool) *replica {
	return &replica{
		node: node, hlcOn: hlcOn, nextSeq: 1,
		recs: map[string]*crdt.Record{},
		log:  map[hlc.NodeID][]*crdt.Write{},
		held: map[hlc.NodeID]store.Held{},
	}
}

func recKey(table, id string) string { return table + "\x00" + id }

func (r *replica) NodeID() hlc.NodeID { return r.node }

func (r *replica) Holdings() map[hlc.NodeID]store.Held {
	if r.snap != nil {
		return r.snap
	}
	out := make(map[hlc.NodeID]store.Held, len(r.held))
	for o, h := range r.held {
		out[o] = h.Clone()
	}
	r.snap = out
	return out
}

func (r *replica) Stream(origin hlc.NodeID, after uint64, fn func(*crdt.Write) error) error {
	l := r.log[origin]
	for seq := after + 1; seq <= uint64(len(l)); seq++ {
		if w := l[seq-1]; w != nil {
			if err := fn(w); err != nil {
				return err
			}
		}
	}
	return nil
}

func heldCount(h store.Held) int {
	n := int(h.Contig)
	for _, rg := range h.Ranges {
		n += int(rg.Hi - rg.Lo + 1)
	}
	return n
}

// compact returns w with its fields and context in slices of their own:
// the wire decoder carves them out of large per-chunk blocks, which a log
// kept for the whole run would otherwise hold on to.
func compact(w *crdt.Write) *crdt.Write {
	c := *w
	c.Fields = append([]crdt.FieldValue(nil), w.Fields...)
	c.Ctx = w.Ctx.Clone()
	return &c
}

// hold marks w held and logs it.
func (r *replica) hold(w *crdt.Write) {
	r.snap = nil
	h := r.held[w.Origin]
	before := heldCount(h)
	h.Add(w.Seq, w.Seq)
	r.held[w.Origin] = h
	r.heldCount += heldCount(h) - before
	l := r.log[w.Origin]
	for uint64(len(l)) < w.Seq {
		l = append(l, nil)
	}
	l[w.Seq-1] = w
	r.log[w.Origin] = l
	if r.onHeld != nil {
		r.onHeld(w)
	}
}

func (r *replica) holds(d crdt.Dot) bool {
	h, ok := r.held[d.Node]
	return ok && h.Contains(d.Seq)
}

func (r *replica) record(table, id string) *crdt.Record {
	k := recKey(table, id)
	rec := r.recs[k]
	if rec == nil {
		rec = &crdt.Record{}
		r.recs[k] = rec
	}
	return rec
}

// scopeBatch is the batch replication's hooks get from a replica. The
// lab's replicas hold full scope and no tombstone horizon: no hook hides,
// purges or collects a record of theirs, and one that tried would fail
// the call (replica holds no hidden state to keep it in).
type scopeBatch struct{ err error }

var _ store.ScopeBatch = (*scopeBatch)(nil)

func (b *scopeBatch) refuse(what string) {
	if b.err == nil {
		b.err = fmt.Errorf("lab: a replica cannot %s a record: the lab's replicas hold full scope and collect nothing", what)
	}
}

// HiddenSkipped: a lab replica hides nothing.
func (b *scopeBatch) HiddenSkipped(table, id string) (crdt.VV, bool) { return nil, false }

func (b *scopeBatch) SetHidden(table, id string, hidden bool, _ crdt.VV) { b.refuse("hide or show") }
func (b *scopeBatch) Purge(table, id string, _ crdt.VV)                  { b.refuse("purge") }
func (b *scopeBatch) CollectRecord(table, id string)                     { b.refuse("collect") }
func (b *scopeBatch) Err() error                                         { return b.err }

func (r *replica) ApplyRemoteScoped(clock *hlc.Clock, writes []*crdt.Write, empties map[hlc.NodeID][]store.SeqRange, hook func(replication.Batch, *store.Result) error) (*store.Result, error) {
	for _, w := range writes {
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
	}
	res := &store.Result{
		Status:   make([]store.Status, len(writes)),
		Outcomes: make([]crdt.Outcome, len(writes)),
		Records:  map[string]*crdt.Record{},
	}
	for i, w := range writes {
		if r.holds(w.Dot()) {
			res.Status[i] = store.Duplicate
			continue
		}
		if r.hlcOn {
			if err := clock.Update(w.TS); err != nil {
				var oe *hlc.OffsetError
				if !errors.As(err, &oe) {
					return nil, err
				}
				res.Status[i] = store.Parked
				res.Parked = append(res.Parked, i)
				r.parked++
				continue
			}
		}
		rec := r.record(w.Table, w.ID)
		out := &res.Outcomes[i]
		rec.Apply(w, out)
		switch {
		case out.NotReady:
			res.Status[i] = store.Deferred
			res.Deferred = append(res.Deferred, i)
			*out = crdt.Outcome{}
			continue
		case out.Duplicate:
			res.Status[i] = store.Known
			*out = crdt.Outcome{}
		default:
			res.Status[i] = store.Applied
			res.Applied++
		}
		r.hold(compact(w))
		res.Records[recKey(w.Table, w.ID)] = rec
	}
	origins := make([]hlc.NodeID, 0, len(empties))
	for o := range empties {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i] < origins[j] })
	for _, o := range origins {
		r.snap = nil
		h := r.held[o]
		before := heldCount(h)
		for _, rg := range empties[o] {
			h.Add(rg.Lo, rg.Hi)
		}
		r.held[o] = h
		r.heldCount += heldCount(h) - before
	}
	if hook != nil {
		b := &scopeBatch{}
		if err := hook(b, res); err != nil {
			return nil, err
		}
		if b.err != nil {
			return nil, b.err
		}
	}
	return res, nil
}

func (r *replica) GetAny(table, id string) (*crdt.Record, error) {
	rec := r.recs[recKey(table, id)]
	if rec == nil {
		return nil, store.ErrNotFound
	}
	return rec, nil
}

func maxStamp(rec *crdt.Record) hlc.Timestamp {
	var m hlc.Timestamp
	see := func(es []crdt.Entry) {
		for _, e := range es {
			m = max(m, e.TS)
		}
	}
	see(rec.Exist)
	see(rec.Dels)
	for i := range rec.Fields {
		see(rec.Fields[i].Cands)
	}
	return m
}

func (r *replica) MergeRecordScoped(clock *hlc.Clock, table, id string, in *crdt.Record, hook func(replication.Batch, *crdt.Record) error) (bool, error) {
	if msg := in.Check(); msg != "" {
		return false, fmt.Errorf("%w: merged record %s/%s: %s", store.ErrInvalid, table, id, msg)
	}
	if r.hlcOn {
		if err := clock.Update(maxStamp(in)); err != nil {
			return false, err
		}
	}
	rec := r.record(table, id)
	before := rec.Digest()
	rec.Merge(in)
	changed := rec.Digest() != before
	if hook != nil && changed {
		b := &scopeBatch{}
		if err := hook(b, rec); err != nil {
			return false, err
		}
		if b.err != nil {
			return false, b.err
		}
	}
	return changed, nil
}

func (r *replica) GCHorizon() (crdt.VV, error)               { return nil, nil }
func (r *replica) RaiseGCHorizon(h crdt.VV) (crdt.VV, error) { return nil, nil }
func (r *replica) Collect(limit int) (int, error)            { return 0, nil }

// writeLocal makes a local write with the given stamp and context, applies
// it and holds it. It returns the write and crdt's outcome.
func (r *replica) writeLocal(table, id string, fields []crdt.FieldValue, del bool, ts hlc.Timestamp, ctx crdt.VV) (*crdt.Write, crdt.Outcome) {
	rec := r.record(table, id)
	w := &crdt.Write{Table: table, ID: id, Origin: r.node, Seq: r.nextSeq, TS: ts, Ctx: ctx, Delete: del, Fields: fields}
	if err := w.Validate(); err != nil {
		panic("lab: invalid local write: " + err.Error())
	}
	r.nextSeq++
	var out crdt.Outcome
	rec.Apply(w, &out)
	if out.NotReady || out.Duplicate {
		panic("lab: local write not applied")
	}
	r.hold(w)
	return w, out
}
