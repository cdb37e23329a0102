package query

import (
	"bytes"
	"math"

	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query/ordkey"
)

// Index is an index of the queried table that queries may use (built).
type Index struct {
	Name   string
	Fields []string
}

// Plan is how a query is run: by an index (a key range of it, read in
// order or not) or by a scan of the table.
type Plan struct {
	// Index names the index read ("": a scan).
	Index string
	// Eq is how many leading fields of the index the where clause fixes;
	// Range whether it bounds the next one; Ordered whether the index
	// gives the query's order (a page reads little more than itself).
	Eq      int
	Range   bool
	Ordered bool

	lower, upper []byte // entry tuple bounds (nil: unbounded)
	groupN       int    // Ordered: entries with these many equal values form a group
	fields       int    // the index's fields
	orderAt      int    // Ordered: index of the first order field in the index
	reverse      bool
}

// eqKey returns the ordkey bytes that every value equal (in CEL) to the
// literal v starts with, and whether they are a whole value (so further
// fields may follow). Numbers compare by value: a literal beyond 2^53
// fixes only the float part.
func eqKey(v any) ([]byte, bool) {
	enc := ordkey.AppendScalar(nil, v)
	if enc[0] != ordkey.KindNumber {
		return enc, true
	}
	var f float64
	switch t := v.(type) {
	case int64:
		f = float64(t)
	case uint64:
		f = float64(t)
	case float64:
		f = t
	}
	if math.Abs(f) <= 1<<53 && !math.IsNaN(f) {
		return enc, true
	}
	return enc[:9], false
}

// rangeBounds returns bounds (within the values' encodings) that hold
// every value v with `v op lit` in CEL: comparisons only hold between
// values of one kind (numbers with numbers, strings with strings), so the
// range stays within the literal's kind. ok is false for other literals.
func rangeBounds(op string, lit any) (lo, hi []byte, ok bool) {
	enc := ordkey.AppendScalar(nil, lit)
	kind := enc[0]
	switch kind {
	case ordkey.KindNumber:
		enc = enc[:9] // numbers equal to the float part may be on either side
	case ordkey.KindString:
	default:
		return nil, nil, false
	}
	switch op {
	case ">", ">=":
		return enc, []byte{kind + 1}, true
	case "<", "<=":
		return []byte{kind}, ordkey.PrefixEnd(enc), true
	}
	return nil, nil, false
}

func maxBytes(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minBytes(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// Plan chooses how to run the query given the usable indexes of its
// table: the index fixing the most leading fields by equality, then one
// that bounds the next field, then one that gives the order; none of
// these: a scan.
func (p *Prepared) Plan(indexes []Index) Plan { return p.PlanFor(indexes, nil) }

// PlanFor is Plan with the device attributes the query runs with: a
// comparison with device.NAME (owner == device.user) fixes an index
// field as a literal does.
func (p *Prepared) PlanFor(indexes []Index, device map[string]string) Plan {
	var comps []filter.Comparison
	if p.where != nil {
		for _, c := range p.where.Comparisons() {
			v, ok := c.Resolve(device)
			if !ok {
				continue
			}
			c.Value, c.Device = v, ""
			comps = append(comps, c)
		}
	}
	best, bestScore := Plan{}, 0
	for _, ix := range indexes {
		pl := Plan{Index: ix.Name, fields: len(ix.Fields)}
		var prefix []byte
		whole := true
		for pl.Eq < len(ix.Fields) && whole {
			found := false
			for _, c := range comps {
				if c.Field == ix.Fields[pl.Eq] && c.Op == "==" {
					var k []byte
					k, whole = eqKey(c.Value)
					prefix = append(prefix, k...)
					found = true
					break
				}
			}
			if !found {
				break
			}
			pl.Eq++
		}
		if pl.Eq > 0 {
			pl.lower, pl.upper = prefix, ordkey.PrefixEnd(prefix)
		}
		if whole && pl.Eq < len(ix.Fields) {
			var lo, hi []byte
			for _, c := range comps {
				if c.Field != ix.Fields[pl.Eq] || c.Op == "==" {
					continue
				}
				l, h, ok := rangeBounds(c.Op, c.Value)
				if !ok {
					continue
				}
				if !pl.Range {
					lo, hi, pl.Range = l, h, true
				} else {
					lo, hi = maxBytes(lo, l), minBytes(hi, h)
				}
			}
			if pl.Range {
				pl.lower = append(append([]byte(nil), prefix...), lo...)
				pl.upper = append(append([]byte(nil), prefix...), hi...)
			}
		}
		// The index gives the order when the order's fields are the ones
		// after the fixed ones, all in one direction.
		if whole && len(p.order) <= len(ix.Fields)-pl.Eq {
			ok := true
			for i, k := range p.order {
				ok = ok && ix.Fields[pl.Eq+i] == k.field && k.desc == p.order[0].desc
			}
			if ok {
				pl.Ordered = true
				pl.orderAt = pl.Eq
				pl.groupN = pl.Eq + len(p.order)
				pl.reverse = len(p.order) > 0 && p.order[0].desc
			}
		}
		score := pl.Eq * 4
		if pl.Range {
			score += 2
		}
		if pl.Ordered && (len(p.order) > 0 || pl.Eq == len(ix.Fields)) {
			score++ // only then does the order save reading: a group per value
		}
		if score > bestScore {
			best, bestScore = pl, score
		}
	}
	return best
}
