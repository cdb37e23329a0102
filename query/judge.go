package query

import (
	"slices"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
)

// Judging one record alone, for a caller that keeps a result up to date
// as records change (package query/live) instead of running the query
// again: whether the record is one of the query's matches, and where it
// goes in the query's order.

// Judge judges rec, the stored state of id (nil: none), against the
// query at env: in reports whether it is one of the query's matches (it
// exists, the where clause holds, it comes after the cursor), and r is
// its projected view, which carries its position for Compare and Sort.
func (p *Prepared) Judge(id string, rec *crdt.Record, env Env) (r Record, in bool) {
	run := &run{p: p, env: filter.Env{NowMs: env.NowMs, Device: env.Device}}
	if !run.match(id, rec) {
		return Record{}, false
	}
	pos := run.positionOf(id, rec)
	if !run.afterCursor(&pos) {
		return Record{}, false
	}
	r = p.view(id, rec)
	r.pos = &pos
	return r, true
}

// Ordered reports whether every record of rs carries its position
// (it came from Run or Judge of this query), as Compare and Sort need.
func Ordered(rs []Record) bool {
	for i := range rs {
		if rs[i].pos == nil {
			return false
		}
	}
	return true
}

// Compare orders two records of the query's result (from Run or Judge:
// Ordered) by the query's order: negative when a comes first.
func (p *Prepared) Compare(a, b Record) int { return p.compare(a.pos, b.pos) }

// Sort sorts records of the query's result (Ordered) in its order.
func (p *Prepared) Sort(rs []Record) { slices.SortFunc(rs, p.Compare) }

// Limit is the most records a page holds (Query.Limit, or DefaultLimit).
func (p *Prepared) Limit() int { return p.limit }
