package crdt

import (
	"fmt"

	"github.com/replicad/replicad/hlc"
)

// Write is one change to one record, as its origin made it: the fields it
// sets, or a delete. A Write is immutable once made; the receiver validates
// it (see [Write.Validate]) before applying it.
type Write struct {
	Table  string
	ID     string
	Origin hlc.NodeID    // the node that made the write
	Seq    uint64        // the origin's sequence number, from 1, one per write
	TS     hlc.Timestamp // the origin's HLC reading when it made the write
	// Ctx is the causal context: the record's version vector as the writer
	// saw it just before the write ([Record.Context]). Every write Ctx
	// covers is one this write had seen, and supersedes on the fields it
	// sets (a delete: on every field).
	Ctx    VV
	Delete bool
	// Fields are the fields set, sorted by name, names unique. Empty for a
	// delete; empty for a write that only creates the record.
	Fields []FieldValue
	// Elided marks a write whose values were dropped from a change log
	// because every value it set (and its existence entry) was already
	// superseded there. Its field values are nil. Applying it records it as
	// applied and lets its context supersede what it had seen, but adds no
	// candidate: once the writes that superseded it arrive too, the state is
	// the same as if it had been applied whole.
	Elided bool
}

// FieldValue is one field set by a write.
type FieldValue struct {
	Name  string
	Value Value
}

// Dot returns the write's identity.
func (w *Write) Dot() Dot { return Dot{w.Origin, w.Seq} }

// Stamp returns the write's position in the last-writer-wins order.
func (w *Write) Stamp() hlc.Stamp { return hlc.Stamp{TS: w.TS, Node: w.Origin} }

// Validate checks the write's shape: a write from outside must pass before
// it is applied. It does not check values' encodings (see [Value.Validate]).
func (w *Write) Validate() error {
	switch {
	case w.Origin == 0:
		return fmt.Errorf("write %s/%s: no origin", w.Table, w.ID)
	case w.Seq == 0:
		return fmt.Errorf("write %s/%s: sequence number 0", w.Table, w.ID)
	case w.TS == 0:
		return fmt.Errorf("write %s/%s: no timestamp", w.Table, w.ID)
	case !w.Ctx.Valid():
		return fmt.Errorf("write %s/%s: malformed causal context", w.Table, w.ID)
	case w.Ctx.Covers(w.Dot()):
		return fmt.Errorf("write %s/%s: causal context covers the write itself", w.Table, w.ID)
	case w.Elided && len(w.Fields) == 0 && !w.Delete:
		return fmt.Errorf("write %s/%s: an elided write names the fields it set", w.Table, w.ID)
	case w.Delete && len(w.Fields) > 0:
		return fmt.Errorf("write %s/%s: a delete sets no fields", w.Table, w.ID)
	}
	for i, f := range w.Fields {
		if f.Name == "" {
			return fmt.Errorf("write %s/%s: empty field name", w.Table, w.ID)
		}
		if i > 0 && w.Fields[i-1].Name >= f.Name {
			return fmt.Errorf("write %s/%s: fields not sorted or not unique at %q", w.Table, w.ID, f.Name)
		}
		if len(f.Value) == 0 && !w.Elided {
			return fmt.Errorf("write %s/%s: field %q has no value", w.Table, w.ID, f.Name)
		}
	}
	return nil
}

// Entry is one write as a candidate: a value of a field, a delete's marker
// on a field, or an operation in the record's existence register.
type Entry struct {
	Origin hlc.NodeID
	Seq    uint64
	TS     hlc.Timestamp
	Delete bool  // a delete (as a field's candidate: the field is cleared)
	Value  Value // nil for deletes and in the existence register
}

// Dot returns the identity of the write behind the entry.
func (e Entry) Dot() Dot { return Dot{e.Origin, e.Seq} }

// Stamp returns the entry's position in the last-writer-wins order.
func (e Entry) Stamp() hlc.Stamp { return hlc.Stamp{TS: e.TS, Node: e.Origin} }

// Field is the state of one field: its live candidates, sorted by stamp, and
// the part of its cover that is above what the record has applied.
type Field struct {
	Name  string
	Cands []Entry
	Cov   VV
}

// Record is the replicated state of one record. It is a join-semilattice:
// [Record.Merge] is commutative, associative and idempotent, and applying
// writes with [Record.Apply] reaches the same state whatever the order of
// delivery, as long as each origin's writes to the record arrive in the
// order the origin made them (duplicates are fine).
//
// # Semantics
//
// Every field is a multi-value register. A write to a field supersedes the
// candidates its causal context covers; candidates neither covers are
// concurrent and all stay, sorted by stamp. The last-writer-wins view picks
// the highest stamp ([Record.Winner]); the manual policy shows them all.
// A delete is a write of "cleared" to every field, including fields the
// replica has not seen yet: it supersedes every value it had seen, and its
// marker competes with concurrent values. The record's existence is the same
// register over every write and delete: the record exists when its
// highest-stamped live operation is a write. So a write concurrent with a
// delete and stamped after it brings the record back with only the values
// written concurrently, and a write made after a delete re-creates it with
// only its own values.
//
// # Representation
//
// A candidate c of a field is dead once some write to that field (or some
// delete) whose context covers c has been applied. The cover of a field is
// the join of the contexts of the writes applied to it. Under per-origin
// order, entries of a cover at or below Applied can no longer decide
// anything for a write still to arrive, so covers keep only the entries
// above Applied, and a candidate Applied covers but a state lacks is known
// dead in that state. This keeps the common state (causal delivery) free of
// cover vectors and canonical: two replicas that applied the same writes
// hold byte-identical records.
//
// A field absent from Fields holds the markers of the live deletes and an
// empty cover; Fields lists only the fields that differ from that.
type Record struct {
	Applied VV      // per origin, the highest write to this record applied
	Exist   []Entry // live operations of the existence register (no values)
	ExCov   VV      // cover of the existence register, above Applied
	Dels    []Entry // live deletes (not covered by a later delete)
	DelCov  VV      // join of the deletes' contexts, above Applied
	Fields  []Field // sorted by name

	// covFields counts the fields with a non-empty cover, so that Apply
	// can skip normalizing in the common case. Derived: recomputed by
	// normalize and by decoding.
	covFields int
}

// Context returns the causal context a new write to the record must carry:
// every write applied here and every write those had seen. The returned
// vector is a new copy.
func (r *Record) Context() VV {
	ctx := r.Applied.Clone()
	ctx.Join(r.ExCov)
	return ctx
}

// FieldOutcome says what a write did to one field.
type FieldOutcome struct {
	Name string
	// Superseded are the candidates the write replaced: it had seen them.
	Superseded []Entry
	// Concurrent are the candidates left beside the write: neither had seen
	// the other. Under last-writer-wins the highest stamp among them and
	// the write is shown; manual shows them all.
	Concurrent []Entry
	// Dead is true when the write arrived already superseded on this field
	// by a write (or delete) that had seen it.
	Dead bool
}

// Ready reports whether w can be applied to r: the origin's previous write
// to this record (which w's context names, since an origin always sees its
// own writes) has been applied. A write that is not ready must wait for its
// predecessor; [Record.Apply] refuses it.
func (r *Record) Ready(w *Write) bool {
	return w.Ctx.Get(w.Origin) <= r.Applied.Get(w.Origin)
}

// Collected marks the writes of d.Node to r up to d.Seq applied (and dead)
// in a state that has applied none of that origin's writes: a replica that
// collected the record's deleted state under the tombstone horizon (every
// write it held then was dead) and re-created it from writes that had
// seen the delete holds a state whose covers name those writes but whose
// Applied does not. The origin's next write names the last of them as its
// predecessor ([Record.Ready]); the caller, which holds that write and
// knows it collected, marks it applied first, reaching the state of a
// replica that never collected the record. Covers at or below the new
// Applied are dropped. It does nothing if r has applied a write of d.Node.
func (r *Record) Collected(d Dot) {
	if d.Seq == 0 || r.Applied.Get(d.Node) != 0 {
		return
	}
	r.Applied.Set(d)
	r.normalize()
}

// Outcome reports what Apply did, for the policy layer. An Outcome can be
// reused across calls; Apply resets it.
type Outcome struct {
	// Duplicate is true when the write had already been applied; nothing
	// changed.
	Duplicate bool
	// NotReady is true when the origin's previous write to the record has
	// not been applied yet (see [Record.Ready]); nothing changed.
	NotReady bool
	// Fields: for a write, one per field it sets, in the write's order; for a
	// delete, one per field with a value it cleared or stands beside.
	Fields []FieldOutcome
	// ExistSuperseded and ExistConcurrent are the operations the write
	// replaced, or stands beside, in the existence register.
	ExistSuperseded []Entry
	ExistConcurrent []Entry
	fieldPool       []FieldOutcome
}

func (o *Outcome) reset() {
	o.Duplicate, o.NotReady = false, false
	o.ExistSuperseded = o.ExistSuperseded[:0]
	o.ExistConcurrent = o.ExistConcurrent[:0]
	if cap(o.Fields) > 0 {
		o.fieldPool = o.Fields[:cap(o.Fields)]
	}
	o.Fields = o.Fields[:0]
}

func (o *Outcome) field(name string) *FieldOutcome {
	n := len(o.Fields)
	if n < len(o.fieldPool) {
		fo := o.fieldPool[n]
		fo.Name, fo.Superseded, fo.Concurrent, fo.Dead = name, fo.Superseded[:0], fo.Concurrent[:0], false
		o.Fields = append(o.Fields, fo)
	} else {
		o.Fields = append(o.Fields, FieldOutcome{Name: name})
	}
	return &o.Fields[n]
}

// Apply applies w to r in place. out, when not nil, is filled with what
// happened. Writes of one origin to a record must be applied in the order
// the origin made them: a write whose predecessor is missing is refused
// (out.NotReady) and changes nothing. w must have passed Validate. r keeps
// references to w's values; the caller must not modify them afterwards.
func (r *Record) Apply(w *Write, out *Outcome) {
	if out != nil {
		out.reset()
	}
	d := w.Dot()
	if r.Applied.Covers(d) {
		if out != nil {
			out.Duplicate = true
		}
		return
	}
	if !r.Ready(w) {
		if out != nil {
			out.NotReady = true
		}
		return
	}
	op := Entry{Origin: w.Origin, Seq: w.Seq, TS: w.TS, Delete: w.Delete}

	// Existence register.
	var exSup *[]Entry
	if out != nil {
		exSup = &out.ExistSuperseded
	}
	causal := !w.Ctx.aboveAny(r.Applied) // w had seen nothing this replica lacks
	if causal && len(r.Exist) == 1 && len(r.ExCov) == 0 && !w.Elided && w.Ctx.Covers(r.Exist[0].Dot()) {
		// Fast path: w supersedes the one live operation.
		if exSup != nil {
			*exSup = append(*exSup, r.Exist[0])
		}
		r.Exist[0] = op
	} else {
		r.Exist = removeCovered(r.Exist, w.Ctx, exSup)
		r.ExCov.joinAbove(w.Ctx, r.Applied)
		if !r.ExCov.Covers(d) && !w.Elided {
			if out != nil {
				out.ExistConcurrent = append(out.ExistConcurrent, r.Exist...)
			}
			r.Exist = insertEntry(r.Exist, op)
		}
	}
	settle := !causal || w.Delete || r.covFields > 0 || len(r.ExCov) > 0 || len(r.DelCov) > 0 || len(r.Dels) > 0

	if w.Delete {
		r.applyDelete(w, op, out)
	} else {
		for i := range w.Fields {
			fv := &w.Fields[i]
			f := r.field(fv.Name)
			var fo *FieldOutcome
			var sup *[]Entry
			if out != nil {
				fo = out.field(fv.Name)
				sup = &fo.Superseded
			}
			// Fast path: one candidate, which the write had seen.
			if causal && len(f.Cands) == 1 && len(f.Cov) == 0 && len(r.DelCov) == 0 && !w.Elided &&
				w.Ctx.Covers(f.Cands[0].Dot()) {
				if sup != nil {
					*sup = append(*sup, f.Cands[0])
				}
				f.Cands[0] = fieldEntry(op, fv.Value)
				continue
			}
			f.Cands = removeCovered(f.Cands, w.Ctx, sup)
			f.Cov.joinAbove(w.Ctx, r.Applied)
			if f.Cov.Covers(d) || r.DelCov.Covers(d) || w.Elided {
				if fo != nil {
					fo.Dead = true
				}
				settle = true
				continue
			}
			if fo != nil {
				fo.Concurrent = append(fo.Concurrent, f.Cands...)
			}
			f.Cands = insertEntry(f.Cands, fieldEntry(op, fv.Value))
		}
	}
	r.Applied.Set(d)
	if settle {
		r.normalize()
	}
}

func (r *Record) applyDelete(w *Write, op Entry, out *Outcome) {
	d := op.Dot()
	r.DelCov.joinAbove(w.Ctx, r.Applied)
	r.Dels = removeCovered(r.Dels, w.Ctx, nil)
	live := !r.DelCov.Covers(d) && !w.Elided
	for i := range r.Fields {
		f := &r.Fields[i]
		var fo *FieldOutcome
		var sup *[]Entry
		if out != nil {
			fo = out.field(f.Name)
			sup = &fo.Superseded
		}
		f.Cands = removeCovered(f.Cands, w.Ctx, sup)
		if live && !f.Cov.Covers(d) {
			if fo != nil {
				fo.Concurrent = append(fo.Concurrent, f.Cands...)
			}
			f.Cands = insertEntry(f.Cands, op)
		} else if fo != nil {
			fo.Dead = true
		}
		if fo != nil && len(fo.Superseded) == 0 && !hasValue(fo.Concurrent) {
			out.Fields = out.Fields[:len(out.Fields)-1] // nothing to report
		}
	}
	if live {
		r.Dels = insertEntry(r.Dels, op)
	}
}

// fieldEntry is a write's candidate for one field: its value, or a
// marker when the value is Cleared.
func fieldEntry(op Entry, v Value) Entry {
	if v.IsCleared() {
		op.Delete = true
		return op
	}
	op.Value = v
	return op
}

func hasValue(es []Entry) bool {
	for _, e := range es {
		if !e.Delete {
			return true
		}
	}
	return false
}

// search returns the index of the first field whose name is >= name.
func (r *Record) search(name string) int {
	lo, hi := 0, len(r.Fields)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.Fields[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// field returns the field named name, materializing it from the live
// deletes' markers if absent.
func (r *Record) field(name string) *Field {
	i := r.search(name)
	if i < len(r.Fields) && r.Fields[i].Name == name {
		return &r.Fields[i]
	}
	r.Fields = append(r.Fields, Field{})
	copy(r.Fields[i+1:], r.Fields[i:])
	var cands []Entry
	if len(r.Dels) > 0 {
		cands = append(cands, r.Dels...)
	}
	r.Fields[i] = Field{Name: name, Cands: cands}
	return &r.Fields[i]
}

// lookup returns the field named name or nil.
func (r *Record) lookup(name string) *Field {
	i := r.search(name)
	if i < len(r.Fields) && r.Fields[i].Name == name {
		return &r.Fields[i]
	}
	return nil
}

// normalize prunes covers to what lies above Applied and drops fields equal
// to the implicit default, so that equal states have equal representations.
func (r *Record) normalize() {
	r.ExCov.PruneCovered(r.Applied)
	r.DelCov.PruneCovered(r.Applied)
	n := 0
	r.covFields = 0
	for i := range r.Fields {
		f := &r.Fields[i]
		if len(f.Cov) > 0 {
			f.Cov.PruneCovered(r.Applied)
		}
		if len(f.Cov) == 0 && sameEntries(f.Cands, r.Dels) {
			continue
		}
		if len(f.Cov) > 0 {
			r.covFields++
		}
		if n != i {
			r.Fields[n] = *f
		}
		n++
	}
	for i := n; i < len(r.Fields); i++ {
		r.Fields[i] = Field{}
	}
	r.Fields = r.Fields[:n]
}

func sameEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Dot() != b[i].Dot() || a[i].Delete != b[i].Delete {
			return false
		}
	}
	return true
}

// removeCovered drops the entries ctx covers, appending them to removed if
// not nil. It filters in place.
func removeCovered(es []Entry, ctx VV, removed *[]Entry) []Entry {
	if len(ctx) == 0 {
		return es
	}
	n := 0
	for i := range es {
		if ctx.Covers(es[i].Dot()) {
			if removed != nil {
				*removed = append(*removed, es[i])
			}
			continue
		}
		if n != i {
			es[n] = es[i]
		}
		n++
	}
	if n == len(es) {
		return es
	}
	clear(es[n:])
	return es[:n]
}

// insertEntry inserts e in stamp order (a dot is never inserted twice).
func insertEntry(es []Entry, e Entry) []Entry {
	s := e.Stamp()
	i := len(es)
	for i > 0 && s.Less(es[i-1].Stamp()) {
		i--
	}
	es = append(es, Entry{})
	copy(es[i+1:], es[i:])
	es[i] = e
	return es
}
