package node

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
	n     *Node
	kinds map[string]policy.Kind
}

func (n *Node) bases() *baseTracker { return &baseTracker{n: n, kinds: map[string]policy.Kind{}} }

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
			k = t.n.PolicyOfIn(w.Table, rec)
			t.kinds[w.Table] = k
		}
		if k != policy.Manual {
			return
		}
		b.PutBase(w.Table, w.ID, fo.Name, prev)
	}
}
