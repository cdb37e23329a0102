package agent

import (
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
)

// baseOf is the value a conflicted field's candidates started from, if
// known here (recorded by the node's write pipeline: internal/node).
func (r *replica) baseOf(table, id, field string) *api.Candidate {
	e, ok, err := r.store.Base(table, id, field)
	if err != nil || !ok {
		return nil
	}
	c := candidates([]crdt.Entry{e})[0]
	return &c
}
