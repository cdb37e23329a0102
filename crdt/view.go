package crdt

import "sort"

// Exists reports whether the record exists: its highest-stamped live
// operation is a write, not a delete.
func (r *Record) Exists() bool {
	if len(r.Exist) == 0 {
		return false
	}
	return !r.Exist[len(r.Exist)-1].Delete
}

// Deleted reports whether the record was written and is now deleted.
func (r *Record) Deleted() bool { return len(r.Exist) > 0 && !r.Exists() }

// Candidates returns the live candidates of a field in stamp order: values,
// and markers of deletes that cleared it. The slice belongs to r; do not
// modify it.
func (r *Record) Candidates(name string) []Entry {
	if f := r.lookup(name); f != nil {
		return f.Cands
	}
	return r.Dels
}

// Winner returns the last-writer-wins candidate of a field: the one with the
// highest stamp. ok is false when the field has no candidate. A winner with
// Delete set means the field is cleared.
func (r *Record) Winner(name string) (e Entry, ok bool) {
	c := r.Candidates(name)
	if len(c) == 0 {
		return Entry{}, false
	}
	return c[len(c)-1], true
}

// Get returns a field's value under last-writer-wins, and whether it has
// one. A record that does not exist has no values.
func (r *Record) Get(name string) (Value, bool) {
	if !r.Exists() {
		return nil, false
	}
	e, ok := r.Winner(name)
	if !ok || e.Delete {
		return nil, false
	}
	return e.Value, true
}

// Visible calls fn, in name order, for each field that has a value under
// last-writer-wins. A record that does not exist has none.
func (r *Record) Visible(fn func(name string, v Value)) {
	if !r.Exists() {
		return
	}
	for i := range r.Fields {
		f := &r.Fields[i]
		if n := len(f.Cands); n > 0 && !f.Cands[n-1].Delete {
			fn(f.Name, f.Cands[n-1].Value)
		}
	}
}

// Values returns the last-writer-wins view as a map (nil when the record
// does not exist).
func (r *Record) Values() map[string]Value {
	if !r.Exists() {
		return nil
	}
	m := make(map[string]Value, len(r.Fields))
	r.Visible(func(name string, v Value) { m[name] = v })
	return m
}

// Conflicted returns, in name order, the fields with more than one live
// candidate of which at least one is a value: the fields a person must
// choose for under the manual policy.
func (r *Record) Conflicted() []string {
	var out []string
	for i := range r.Fields {
		f := &r.Fields[i]
		if len(f.Cands) > 1 && hasValue(f.Cands) {
			out = append(out, f.Name)
		}
	}
	return out
}

// HasConflict reports whether the record has a conflicted field (see
// Conflicted) or a conflict in its existence register (ExistConflict),
// without allocating.
func (r *Record) HasConflict() bool {
	for i := range r.Fields {
		f := &r.Fields[i]
		if len(f.Cands) > 1 && hasValue(f.Cands) {
			return true
		}
	}
	return r.ExistConflict()
}

// ExistConflict reports whether a write and a delete are concurrent in the
// existence register (an update against a delete, for the manual policy).
func (r *Record) ExistConflict() bool {
	var w, d bool
	for _, e := range r.Exist {
		if e.Delete {
			d = true
		} else {
			w = true
		}
	}
	return w && d
}

// FieldNames returns the names of the fields the record holds state for,
// sorted.
func (r *Record) FieldNames() []string {
	out := make([]string, len(r.Fields))
	for i := range r.Fields {
		out[i] = r.Fields[i].Name
	}
	return out
}

// Clone returns a deep copy of r (values are shared: they are immutable).
func (r *Record) Clone() *Record {
	c := &Record{
		Applied: r.Applied.Clone(),
		Exist:   append([]Entry(nil), r.Exist...),
		ExCov:   r.ExCov.Clone(),
		Dels:    append([]Entry(nil), r.Dels...),
		DelCov:  r.DelCov.Clone(),
		Fields:  make([]Field, len(r.Fields)),

		covFields: r.covFields,
	}
	for i, f := range r.Fields {
		c.Fields[i] = Field{Name: f.Name, Cands: append([]Entry(nil), f.Cands...), Cov: f.Cov.Clone()}
	}
	return c
}

// Check verifies r's invariants (sorted, normalized, no dead entries left)
// and returns a description of the first violation, or "". Tests and the
// store's consistency checker use it.
func (r *Record) Check() string {
	for _, v := range []VV{r.Applied, r.ExCov, r.DelCov} {
		if !v.Valid() {
			return "malformed version vector " + v.String()
		}
	}
	for _, d := range r.ExCov {
		if r.Applied.Get(d.Node) >= d.Seq {
			return "existence cover not pruned"
		}
	}
	if !sortedEntries(r.Exist) || !sortedEntries(r.Dels) {
		return "entries not in stamp order"
	}
	for _, e := range append(append([]Entry(nil), r.Exist...), r.Dels...) {
		if !r.Applied.Covers(e.Dot()) {
			return "entry " + e.Dot().String() + " not applied"
		}
	}
	if !sort.SliceIsSorted(r.Fields, func(i, j int) bool { return r.Fields[i].Name < r.Fields[j].Name }) {
		return "fields not sorted"
	}
	for i := range r.Fields {
		f := &r.Fields[i]
		if i > 0 && r.Fields[i-1].Name == f.Name {
			return "duplicate field " + f.Name
		}
		if !sortedEntries(f.Cands) {
			return "candidates of " + f.Name + " not in stamp order"
		}
		if !f.Cov.Valid() {
			return "malformed cover of " + f.Name
		}
		for _, e := range f.Cands {
			if f.Cov.Covers(e.Dot()) || r.DelCov.Covers(e.Dot()) || !r.Applied.Covers(e.Dot()) {
				return "dead or unapplied candidate " + e.Dot().String() + " in " + f.Name
			}
			if !e.Delete && len(e.Value) == 0 {
				return "empty value in " + f.Name
			}
		}
		if len(f.Cov) == 0 && sameEntries(f.Cands, r.Dels) {
			return "field " + f.Name + " not normalized"
		}
	}
	return ""
}

func sortedEntries(es []Entry) bool {
	for i := 1; i < len(es); i++ {
		if !es[i-1].Stamp().Less(es[i].Stamp()) {
			return false
		}
	}
	return true
}
