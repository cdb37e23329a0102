package replica

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// Record is a record as this replica holds it.
type Record struct {
	Table string
	ID    string
	// Fields are the record's values (the last writer's of each field).
	Fields map[string]any
	// Conflicts lists, per conflicted field of a table whose policy is
	// manual, every live candidate (the field's value in Fields is the
	// last writer's until one is chosen). A delete concurrent with an
	// update is listed under "_exists".
	Conflicts map[string][]Candidate
	// Pending: a change of this record made here still waits for the
	// arbitrating hub's decision (server-wins and client-wins tables).
	Pending bool
}

// Candidate is one concurrent value of a conflicted field.
type Candidate struct {
	Value   any    // nil when Deleted
	Deleted bool   // the candidate is a delete of the record
	Node    string // the node that wrote it
	Time    time.Time
}

// Put sets fields of table/id (other fields keep their values; a nil
// value sets the field to null). The write is durable when Put returns.
// A bad table name, record id, field name or value is an ErrInvalid
// error and nothing is stored.
func (r *Replica) Put(ctx context.Context, table, id string, fields map[string]any) error {
	done, err := r.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkNames(table, id, true); err != nil {
		return err
	}
	if len(fields) == 0 {
		return fmt.Errorf("%w: put %s/%q: no fields", ErrInvalid, table, id)
	}
	fvs := make([]crdt.FieldValue, 0, len(fields))
	for name, x := range fields {
		if name == "" {
			return fmt.Errorf("%w: put %s/%q: empty field name", ErrInvalid, table, id)
		}
		v, err := crdt.ValueOf(x)
		if err != nil {
			return fmt.Errorf("%w: put %s/%q: field %q: %v", ErrInvalid, table, id, name, err)
		}
		fvs = append(fvs, crdt.FieldValue{Name: name, Value: v})
	}
	sort.Slice(fvs, func(i, j int) bool { return fvs[i].Name < fvs[j].Name })
	_, err = r.n.Write(table, id, fvs, false, nil)
	return storeErr(err)
}

// Delete deletes table/id (a tombstone that replicates; a later Put
// creates it again). Deleting a record never written here is not an
// error: the delete replicates and wins over older writes elsewhere.
func (r *Replica) Delete(ctx context.Context, table, id string) error {
	done, err := r.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := checkNames(table, id, true); err != nil {
		return err
	}
	_, err = r.n.Write(table, id, nil, true, nil)
	return storeErr(err)
}

// Get returns table/id; ErrNotFound if it was never written here, is
// deleted or is out of this replica's scope.
func (r *Replica) Get(ctx context.Context, table, id string) (*Record, error) {
	done, err := r.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := checkNames(table, id, false); err != nil {
		return nil, err
	}
	rec, err := r.st.Get(table, id)
	if err != nil {
		return nil, storeErr(err)
	}
	if !rec.Exists() {
		return nil, fmt.Errorf("%w: %s/%q is deleted", ErrNotFound, table, id)
	}
	out := &Record{Table: table, ID: id, Fields: map[string]any{}}
	var derr error
	rec.Visible(func(name string, v crdt.Value) {
		x, err := v.Decode()
		if err != nil && derr == nil {
			derr = fmt.Errorf("%s/%q field %q: %w", table, id, name, err)
		}
		out.Fields[name] = x
	})
	if derr != nil {
		return nil, derr
	}
	r.addConflicts(out, rec, nil)
	return out, nil
}

// addConflicts sets out's Conflicts and Pending from rec, its state, as
// Get shows them; with keep, only the conflicts of the fields it holds
// (a projection; "_exists" always).
func (r *Replica) addConflicts(out *Record, rec *crdt.Record, keep map[string]bool) {
	k := r.n.PolicyOf(out.Table)
	for _, c := range policy.Conflicts(k, rec) {
		name := c.Field
		if name == "" {
			name = "_exists"
		}
		if keep != nil && name != "_exists" && !keep[name] {
			continue
		}
		cs := make([]Candidate, 0, len(c.Candidates))
		for _, e := range c.Candidates {
			cd := Candidate{Node: e.Origin.String(), Time: time.UnixMilli(e.TS.Wall()).UTC(), Deleted: e.Delete}
			if !e.Delete {
				cd.Value, _ = e.Value.Decode()
			}
			cs = append(cs, cd)
		}
		if out.Conflicts == nil {
			out.Conflicts = map[string][]Candidate{}
		}
		out.Conflicts[name] = cs
	}
	out.Pending = r.n.Pending(k, rec)
}

// storeErr maps the store's errors to the package's.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case errors.Is(err, store.ErrClosed):
		return ErrClosed
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w (%v)", ErrInvalid, err)
	}
	return err
}
