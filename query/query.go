// Package query parses, plans and runs a query over one table of a
// replica: which records (where, a CEL expression in the dialect of the
// offline profiles, package filter), in which order, how many, from
// which position (an opaque cursor), with which fields, or only how
// many match (count). The package is pure: it reads records through a
// Source (the store's snapshot reader, package query/source) and takes
// the time from its caller.
//
// A record is judged and shown by its last-writer-wins view: the value
// each field shows in the API, conflicted or not. Deleted records and
// records out of the replica's scope are never part of a result.
//
// Order: by the listed fields, each ascending or, with a leading "-",
// descending, in the total order of package ordkey (absent or null <
// bool < number < string < other); ties, and a query without order, by
// id (bytewise, ascending). A cursor names the query it came from (its
// table, where and order) and the position of the last record of its
// page; the next page starts strictly after that position, so a record
// whose position stays the same is returned once whatever is written
// between pages.
//
// Plans: an index whose leading fields the where clause compares for
// equality with literals (field == 'x' terms of its top-level &&) gives
// the records to examine; a range (<, <=, >, >=) on the next field
// narrows them, and an order by the next fields (all ascending or all
// descending) is read from the index in order, so that a page examines
// little more than its records. Without such an index the table is
// scanned. The where clause decides every record either way: a plan
// changes what is examined, never the answer.
package query

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/replicad/replicad/filter"
)

// Query is a query over one table.
type Query struct {
	Table string
	// Where selects records (CEL; "" selects every record).
	Where string
	// Order lists fields, each with a leading "-" for descending; "id"
	// or "-id" may end it. Ties and a query without order go by id.
	Order []string
	// Limit bounds a page (0: DefaultLimit; at most MaxLimit).
	Limit int
	// Cursor continues from the page that returned it ("" for the first).
	Cursor string
	// Fields projects the records to these fields (none: every field).
	Fields []string
	// Count: answer only how many records match (Cursor and Limit are
	// not used).
	Count bool
	// Explain: add the plan to the answer.
	Explain bool
}

// Page size bounds.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
	// MaxOrder bounds the fields of an order.
	MaxOrder = 8
)

// Error is a query the package refuses: the parameter at fault (where,
// order, limit, cursor, fields or the name of an unknown option), the
// byte offset of the problem in its value, and what is wrong.
type Error struct {
	Param  string
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: at offset %d: %s", e.Param, e.Offset, e.Msg)
}

func errAt(param string, off int, format string, args ...any) *Error {
	return &Error{Param: param, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Options are the names FromParams accepts.
var Options = []string{"where", "order", "limit", "cursor", "fields", "count", "explain"}

// FromParams reads a query from URL parameters (where, order=F1,-F2,
// limit, cursor, fields=a,b, count=true, explain=true). An unknown
// option, a repeated one or a malformed value is an *Error.
func FromParams(table string, v url.Values) (Query, error) {
	q := Query{Table: table}
	for k, vals := range v {
		known := false
		for _, o := range Options {
			known = known || k == o
		}
		if !known {
			return q, errAt(k, 0, "unknown option %q (known: %s)", k, strings.Join(Options, ", "))
		}
		if len(vals) != 1 {
			return q, errAt(k, 0, "option %q given %d times", k, len(vals))
		}
	}
	q.Where = v.Get("where")
	q.Cursor = v.Get("cursor")
	if s := v.Get("order"); s != "" {
		q.Order = strings.Split(s, ",")
	}
	if s := v.Get("fields"); s != "" {
		q.Fields = strings.Split(s, ",")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, errAt("limit", 0, "%q is not a whole number", s)
		}
		q.Limit = n
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"count", &q.Count}, {"explain", &q.Explain}} {
		if s := v.Get(b.name); s != "" {
			x, err := strconv.ParseBool(s)
			if err != nil {
				return q, errAt(b.name, 0, "%q is not true or false", s)
			}
			*b.dst = x
		}
	}
	return q, nil
}

// orderKey is one field of an order.
type orderKey struct {
	field string
	desc  bool
}

// Prepared is a checked query, ready to plan and run.
type Prepared struct {
	q       Query
	where   *filter.Expr // nil: every record
	order   []orderKey   // without a trailing id key
	idDesc  bool         // order ends with -id
	limit   int
	ident   uint64 // the query's identity, in its cursors
	after   *position
	project map[string]bool
}

// reserved names cannot be fields of an order or a projection.
var reserved = map[string]bool{"now": true, "today": true, "device": true, "record": true}

// Prepare checks q: the where expression compiles (through the
// process-wide cache of compiled expressions, shared with the profiles'
// filters), the order names valid fields once each, the limit is in
// range, and the cursor is one of this query's.
func Prepare(q Query) (*Prepared, error) {
	p := &Prepared{q: q, limit: q.Limit}
	if q.Table == "" {
		return nil, errAt("table", 0, "no table")
	}
	if strings.TrimSpace(q.Where) != "" {
		x, err := filter.Cached(q.Where)
		if err != nil {
			var fe *filter.Error
			if errors.As(err, &fe) {
				return nil, errAt("where", fe.Offset, "%s (line %d, column %d)", fe.Msg, fe.Line, fe.Column)
			}
			return nil, errAt("where", 0, "%v", err)
		}
		p.where = x
	}
	off := 0
	seen := map[string]bool{}
	if len(q.Order) > MaxOrder+1 {
		return nil, errAt("order", 0, "%d fields, at most %d", len(q.Order), MaxOrder)
	}
	for i, f := range q.Order {
		name, desc := f, false
		if strings.HasPrefix(name, "-") {
			name, desc = name[1:], true
		}
		switch {
		case name == "":
			return nil, errAt("order", off, "empty field name")
		case reserved[name]:
			return nil, errAt("order", off, "%q is not a field", name)
		case seen[name]:
			return nil, errAt("order", off, "field %q listed twice", name)
		case name == "id" && i != len(q.Order)-1:
			return nil, errAt("order", off, "id orders the ties: it can only come last")
		case strings.ContainsAny(name, ",\x00"):
			return nil, errAt("order", off, "invalid field name %q", name)
		}
		seen[name] = true
		if name == "id" {
			p.idDesc = desc
		} else {
			p.order = append(p.order, orderKey{field: name, desc: desc})
		}
		off += len(f) + 1
	}
	if len(p.order) > MaxOrder {
		return nil, errAt("order", 0, "%d fields, at most %d", len(p.order), MaxOrder)
	}
	switch {
	case q.Limit < 0:
		return nil, errAt("limit", 0, "%d is negative", q.Limit)
	case q.Limit > MaxLimit:
		return nil, errAt("limit", 0, "%d is more than %d", q.Limit, MaxLimit)
	case q.Limit == 0:
		p.limit = DefaultLimit
	}
	off = 0
	for _, f := range q.Fields {
		if f == "" || reserved[f] {
			return nil, errAt("fields", off, "%q is not a field", f)
		}
		if p.project == nil {
			p.project = map[string]bool{}
		}
		p.project[f] = true
		off += len(f) + 1
	}
	p.ident = identity(q.Table, q.Where, p.order, p.idDesc)
	if q.Cursor != "" {
		pos, err := decodeCursor(q.Cursor, p.ident, len(p.order))
		if err != nil {
			return nil, err
		}
		p.after = pos
	}
	return p, nil
}
