package agent

import (
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// Conflict bases: on manual tables each replica records, in the batch
// that applies a write, the value the write replaced on each field
// (store.Batch.PutBase), so that a conflict shows the value its
// candidates started from. Whichever candidate arrives first here
// replaced that value; the other, concurrent one replaces nothing.

// baseTracker caches the tables' policies for one batch.
type baseTracker struct {
	r     *replica
	kinds map[string]policy.Kind
}

func (r *replica) bases() *baseTracker { return &baseTracker{r: r, kinds: map[string]policy.Kind{}} }

// track records the values w replaced, if its table is manual.
func (t *baseTracker) track(b *store.Batch, w *crdt.Write, out *crdt.Outcome) {
	if out == nil || out.Duplicate || out.NotReady {
		return
	}
	for _, fo := range out.Fields {
		prev, ok := policy.Replaced(fo)
		if !ok {
			continue
		}
		k, seen := t.kinds[w.Table]
		if !seen {
			rec, _ := policyRecordIn(b, w.Table) // a hook: read through b
			k = t.r.policyOfIn(w.Table, rec)
			t.kinds[w.Table] = k
		}
		if k != policy.Manual {
			return
		}
		b.PutBase(w.Table, w.ID, fo.Name, prev)
	}
}

// trackApplied records the bases of a batch of applied remote writes.
func (r *replica) trackApplied(b *store.Batch, ws []*crdt.Write, res *store.Result) {
	t := r.bases()
	for i, w := range ws {
		if res.Status[i] == store.Applied {
			t.track(b, w, &res.Outcomes[i])
		}
	}
}

// baseOf is the value a conflicted field's candidates started from, if
// known here.
func (r *replica) baseOf(table, id, field string) *candidateJSON {
	e, ok, err := r.store.Base(table, id, field)
	if err != nil || !ok {
		return nil
	}
	c := candidates([]crdt.Entry{e})[0]
	return &c
}
