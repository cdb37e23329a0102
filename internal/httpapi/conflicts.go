package httpapi

import (
	"errors"
	"net/http"
	"slices"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// MaxConflictScan bounds the conflict index entries GET /v1/conflicts
// examines.
const MaxConflictScan = 100000

// Conflicts serves GET /v1/conflicts and POST
// /v1/conflicts/{table}/{id}/{field}.
type Conflicts struct {
	Core Core
	// Duplicates lists the suspected duplicates as conflicts (nil: none).
	Duplicates func(st *store.Store) ([]api.Conflict, error)
}

// List lists the fields with more than one live candidate that
// their table's policy shows as conflicts (manual), from the store's
// conflict index (records with concurrent candidates; at most
// MaxConflictScan of them examined), so that its cost follows the
// conflicts, not the records.
func (cs Conflicts) List(n *node.Node) ([]api.Conflict, error) {
	st := n.Store()
	out := []api.Conflict{}
	afterT, afterID, seen := "", "", 0
	for seen < MaxConflictScan {
		refs, err := st.ConflictedRecords(afterT, afterID, 500)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			seen++
			t := ref.Table
			k := n.PolicyOf(t)
			if k != policy.Manual {
				continue
			}
			rec, err := st.Get(t, ref.ID)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrOutOfScope) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !rec.Exists() && !rec.ExistConflict() {
				continue
			}
			for _, c := range policy.Conflicts(k, rec) {
				name := c.Field
				if name == "" {
					name = node.ExistsField
				}
				cj := api.Conflict{Kind: "field", Table: t, ID: ref.ID, Field: name, Candidates: node.Candidates(c.Candidates)}
				if c.Field != "" {
					cj.Base = n.BaseOf(t, ref.ID, c.Field)
				}
				out = append(out, cj)
			}
		}
		if len(refs) < 500 {
			break
		}
		afterT, afterID = refs[len(refs)-1].Table, refs[len(refs)-1].ID
	}
	if cs.Duplicates == nil {
		return out, nil
	}
	dups, err := cs.Duplicates(st)
	if err != nil {
		return nil, err
	}
	return append(out, dups...), nil
}

// Get answers the conflicts.
func (cs Conflicts) Get(w http.ResponseWriter, r *http.Request) (any, error) {
	return cs.Core.With(func(n *node.Node) (any, error) {
		list, err := cs.List(n)
		if err != nil {
			return nil, err
		}
		return map[string]any{"conflicts": list}, nil
	})
}

// Resolve writes the chosen value of a conflicted field. The
// write's causal context is the record's (store.Write), which covers every
// candidate, so it supersedes them all on every replica. Picking a delete
// marker deletes the record.
func (cs Conflicts) Resolve(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := Records{Core: cs.Core}.Names(r)
	if err != nil {
		return nil, err
	}
	field := r.PathValue("field")
	var body api.ResolveRequest
	if err := DecodeBody(r, &body); err != nil {
		return nil, err
	}
	if (body.Pick == nil) == (body.Value == nil) {
		return nil, Errorf(http.StatusBadRequest, `give exactly one of "pick" (a candidate's index) or "value" (a JSON value)`)
	}
	var val crdt.Value
	if body.Value != nil {
		if val, err = ExactValue(body.Value); err != nil {
			return nil, Errorf(http.StatusBadRequest, "value: %v", err)
		}
	}
	return cs.Core.With(func(n *node.Node) (any, error) {
		rec, err := n.Store().Get(table, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err != nil || n.PolicyOf(table) != policy.Manual {
			return nil, Errorf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		if field == node.ExistsField {
			// A delete concurrent with an update: pick one.
			if !rec.ExistConflict() || body.Pick == nil {
				return nil, Errorf(http.StatusNotFound, "no delete/update conflict on %s/%s (resolve it with a pick)", table, id)
			}
			if *body.Pick < 0 || *body.Pick >= len(rec.Exist) {
				return nil, Errorf(http.StatusBadRequest, "pick %d: the record has candidates 0 to %d", *body.Pick, len(rec.Exist)-1)
			}
			// A delete that has seen the update removes the record. Keeping
			// it is a write that has seen the delete and sets again, on
			// every field where the delete's marker stands beside values,
			// the newest of them.
			del := rec.Exist[*body.Pick].Delete
			var fields []crdt.FieldValue
			if !del {
				for _, name := range rec.FieldNames() {
					var best *crdt.Entry
					marker := false
					for _, c := range rec.Candidates(name) {
						if c.Delete {
							marker = true
						} else if best == nil || best.Stamp().Less(c.Stamp()) {
							c := c
							best = &c
						}
					}
					if marker && best != nil {
						fields = append(fields, crdt.FieldValue{Name: name, Value: best.Value})
					}
				}
			}
			res, err := n.Write(table, id, fields, del, nil)
			if err != nil {
				return nil, err
			}
			return n.View(table, id, res.Record), nil
		}
		if !rec.Exists() || !slices.Contains(rec.Conflicted(), field) {
			return nil, Errorf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		del := false
		if body.Pick != nil {
			cands := rec.Candidates(field)
			if *body.Pick < 0 || *body.Pick >= len(cands) {
				return nil, Errorf(http.StatusBadRequest, "pick %d: the field has candidates 0 to %d", *body.Pick, len(cands)-1)
			}
			c := cands[*body.Pick]
			val = c.Value
			if c.Delete {
				// A record delete's marker deletes the record; a cleared
				// field's marker clears the field.
				val = crdt.Cleared
				for _, d := range rec.Dels {
					if d.Dot() == c.Dot() {
						del = true
					}
				}
			}
		}
		var fields []crdt.FieldValue
		if !del {
			fields = []crdt.FieldValue{{Name: field, Value: val}}
		}
		res, err := n.Write(table, id, fields, del, nil)
		if err != nil {
			return nil, err
		}
		return n.View(table, id, res.Record), nil
	})
}
