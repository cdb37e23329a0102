package query

import (
	"bytes"
	"sort"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query/ordkey"
)

// Source is what a query reads: one consistent state of a replica's
// records (a snapshot), with hidden records (out of scope) left out by
// Get and Scan. The store's Reader is one (package query/source).
type Source interface {
	// Indexes returns the usable (built) indexes of table.
	Indexes(table string) []Index
	// Get returns a record's state; ok is false when it is not stored
	// or out of scope.
	Get(table, id string) (rec *crdt.Record, ok bool, err error)
	// Scan calls fn with each record of table after id after, in id
	// order, until fn returns false.
	Scan(table, after string, fn func(id string, rec *crdt.Record) bool) error
	// IndexScan calls fn with the entries of an index whose tuple is in
	// [lower, upper) (nil: unbounded), in order or reversed, until fn
	// returns false; tuple and id are valid during the call only.
	IndexScan(name string, lower, upper []byte, reverse bool, fn func(tuple []byte, id string) bool) error
}

// Env is what a where clause reads besides the record.
type Env struct {
	NowMs  int64             // the current time (Unix ms): now, today
	Device map[string]string // device.* attributes
}

// Record is a record of a result: its id and its fields (last-writer-wins
// view, projected).
type Record struct {
	ID     string
	Fields map[string]crdt.Value
	// State is the record's state the view comes from, as the Source
	// gave it (read only: an API renders its conflicts from it).
	State *crdt.Record
	// pos is its position under the query's order (Prepared.Compare),
	// nil for a record made elsewhere.
	pos *position
}

// PlanInfo is the plan a query ran with (explain).
type PlanInfo struct {
	Index    *string `json:"index"` // nil: a scan
	Examined int     `json:"examined"`
}

// Result is a query's answer.
type Result struct {
	Records []Record
	// Next continues after the last record ("" when there are no more).
	Next string
	// Count is how many records match (Query.Count).
	Count int
	// Plan is set with Query.Explain.
	Plan *PlanInfo
}

// Execute prepares, plans and runs q on src.
func Execute(src Source, q Query, env Env) (*Result, error) {
	p, err := Prepare(q)
	if err != nil {
		return nil, err
	}
	return p.Run(src, env)
}

// hit is a matching record with its position.
type hit struct {
	pos position
	rec *crdt.Record
}

type run struct {
	p        *Prepared
	src      Source
	env      filter.Env
	examined int
	hits     []hit
	n        int
}

// match reads nothing: it judges rec (stored state of id).
func (r *run) match(id string, rec *crdt.Record) bool {
	r.examined++
	if rec == nil || !rec.Exists() {
		return false
	}
	return r.p.where == nil || r.p.where.Match(id, rec, r.env)
}

func (r *run) positionOf(id string, rec *crdt.Record) position {
	pos := position{id: id, keys: make([][]byte, len(r.p.order))}
	for i, k := range r.p.order {
		v, _ := rec.Get(k.field)
		pos.keys[i] = ordkey.Append(nil, v)
	}
	return pos
}

// afterCursor reports whether pos comes after the cursor's position.
func (r *run) afterCursor(pos *position) bool {
	return r.p.after == nil || r.p.compare(pos, r.p.after) > 0
}

// Run runs the prepared query on src.
func (p *Prepared) Run(src Source, env Env) (*Result, error) {
	r := &run{p: p, src: src, env: filter.Env{NowMs: env.NowMs, Device: env.Device}}
	plan := p.PlanFor(src.Indexes(p.q.Table), env.Device)
	var err error
	switch {
	case p.q.Count:
		err = r.count(plan)
	case plan.Index != "" && plan.Ordered:
		err = r.ordered(plan)
	case plan.Index != "":
		err = r.unordered(plan)
	case len(p.order) == 0 && !p.idDesc:
		err = r.scanByID()
	default:
		err = r.scanAll()
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Count: r.n}
	if !p.q.Count {
		n := len(r.hits)
		if n > p.limit {
			n = p.limit
			res.Next = encodeCursor(p.ident, &r.hits[n-1].pos)
		}
		res.Records = make([]Record, n)
		for i := 0; i < n; i++ {
			res.Records[i] = p.view(r.hits[i].pos.id, r.hits[i].rec)
			res.Records[i].pos = &r.hits[i].pos
		}
	}
	if p.q.Explain {
		pi := &PlanInfo{Examined: r.examined}
		if plan.Index != "" {
			name := plan.Index
			pi.Index = &name
		}
		res.Plan = pi
	}
	return res, nil
}

// view is a record's projected last-writer-wins view.
func (p *Prepared) view(id string, rec *crdt.Record) Record {
	n := len(rec.Fields)
	if p.project != nil {
		n = min(n, len(p.project))
	}
	out := Record{ID: id, Fields: make(map[string]crdt.Value, n), State: rec}
	rec.Visible(func(name string, v crdt.Value) {
		if p.project == nil || p.project[name] {
			out.Fields[name] = v
		}
	})
	return out
}

// count counts the matches (through the index's range when there is one).
func (r *run) count(plan Plan) error {
	if plan.Index == "" {
		return r.src.Scan(r.p.q.Table, "", func(id string, rec *crdt.Record) bool {
			if r.match(id, rec) {
				r.n++
			}
			return true
		})
	}
	return r.eachEntry(plan, plan.lower, plan.upper, false, func(_ []byte, id string) (bool, error) {
		rec, ok, err := r.src.Get(r.p.q.Table, id)
		if err != nil {
			return false, err
		}
		if ok && r.match(id, rec) {
			r.n++
		}
		return true, nil
	})
}

// eachEntry runs fn on the index entries in [lower, upper), stopping at
// fn's false or error.
func (r *run) eachEntry(plan Plan, lower, upper []byte, reverse bool, fn func(tuple []byte, id string) (bool, error)) error {
	var ferr error
	err := r.src.IndexScan(plan.Index, lower, upper, reverse, func(tuple []byte, id string) bool {
		more, err := fn(tuple, id)
		if err != nil {
			ferr = err
			return false
		}
		return more
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// ordered reads the index in the query's order: entries with equal
// values of the fixed and order fields form a group, sorted by id once
// complete; it stops after the group that fills the page (and one more
// record, to know whether there is a next page).
func (r *run) ordered(plan Plan) error {
	lower, upper := plan.lower, plan.upper
	if r.p.after != nil && len(r.p.order) > 0 {
		// Start at the cursor's group: fixed values, then its order values.
		var fixed []byte
		if plan.Eq > 0 {
			fixed = plan.lower[:ordkey.TupleLen(plan.lower, plan.Eq)]
		}
		seek := fixed
		for _, k := range r.p.after.keys {
			seek = append(append([]byte(nil), seek...), k...)
		}
		if plan.reverse {
			end := ordkey.PrefixEnd(seek)
			if upper == nil || bytes.Compare(end, upper) < 0 {
				upper = end
			}
		} else if lower == nil || bytes.Compare(seek, lower) > 0 {
			lower = seek
		}
	}
	var group []hit
	var groupKey []byte
	inOrder := plan.groupN == plan.fields && r.p.idDesc == plan.reverse
	flush := func() {
		sort.Slice(group, func(i, j int) bool { return r.p.compare(&group[i].pos, &group[j].pos) < 0 })
		r.hits = append(r.hits, group...)
		group = group[:0]
	}
	err := r.eachEntry(plan, lower, upper, plan.reverse, func(tuple []byte, id string) (bool, error) {
		gl := ordkey.TupleLen(tuple, plan.groupN)
		if groupKey == nil || !bytes.Equal(tuple[:gl], groupKey) {
			flush()
			if len(r.hits) > r.p.limit {
				return false, nil
			}
			groupKey = append(groupKey[:0], tuple[:gl]...)
			if groupKey == nil {
				groupKey = []byte{}
			}
		}
		// The entry's position, from its tuple: skip what the cursor passed.
		pos := position{id: id, keys: make([][]byte, len(r.p.order))}
		off := ordkey.TupleLen(tuple, plan.orderAt)
		for i := range r.p.order {
			l := ordkey.Len(tuple[off:])
			pos.keys[i] = tuple[off : off+l : off+l]
			off += l
		}
		if !r.afterCursor(&pos) {
			return true, nil
		}
		rec, ok, err := r.src.Get(r.p.q.Table, id)
		if err != nil {
			return false, err
		}
		if ok && r.match(id, rec) {
			pos.keys = r.positionOf(id, rec).keys // owned copies
			group = append(group, hit{pos: pos, rec: rec})
		}
		// A group of entries equal in every field comes in id order: once
		// the page and one more are in hand, nothing later can precede them.
		return !(inOrder && len(r.hits)+len(group) > r.p.limit), nil
	})
	if len(r.hits) <= r.p.limit {
		flush()
	}
	return err
}

// unordered reads the index's range, then sorts what matches.
func (r *run) unordered(plan Plan) error {
	err := r.eachEntry(plan, plan.lower, plan.upper, false, func(_ []byte, id string) (bool, error) {
		rec, ok, err := r.src.Get(r.p.q.Table, id)
		if err != nil {
			return false, err
		}
		if ok && r.match(id, rec) {
			r.collect(id, rec)
		}
		return true, nil
	})
	r.sortHits()
	return err
}

// scanByID scans the table in id order from the cursor: the order of a
// query without one.
func (r *run) scanByID() error {
	after := ""
	if r.p.after != nil {
		after = r.p.after.id
	}
	return r.src.Scan(r.p.q.Table, after, func(id string, rec *crdt.Record) bool {
		if r.match(id, rec) {
			r.hits = append(r.hits, hit{pos: position{id: id}, rec: rec})
		}
		return len(r.hits) <= r.p.limit
	})
}

// scanAll scans the whole table and sorts what matches.
func (r *run) scanAll() error {
	err := r.src.Scan(r.p.q.Table, "", func(id string, rec *crdt.Record) bool {
		if r.match(id, rec) {
			r.collect(id, rec)
		}
		return true
	})
	r.sortHits()
	return err
}

// collect keeps a match past the cursor.
func (r *run) collect(id string, rec *crdt.Record) {
	pos := r.positionOf(id, rec)
	if r.afterCursor(&pos) {
		r.hits = append(r.hits, hit{pos: pos, rec: rec})
	}
}

func (r *run) sortHits() {
	sort.Slice(r.hits, func(i, j int) bool { return r.p.compare(&r.hits[i].pos, &r.hits[j].pos) < 0 })
}
