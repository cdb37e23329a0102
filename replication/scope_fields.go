package replication

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Read permissions as scopes. A node's read permissions are a Scope too (a
// limit): the tables it may read, each whole or Projected to the fields it
// may read; All for no restriction. A serving replica narrows a peer's
// scope (declared, or assigned by a hub) to the peer's limit
// (Local.Limit, Scope.Restrict) and sends it nothing else: writes to
// tables the scope does not list go as empties, writes to a projected
// table lose the other fields (ProjectWrite), whole records lose them too
// (ProjectRecord). A replica whose own scope projects a table holds
// incomplete writes and records of it, so it relays them only to peers
// whose scope projects the table to no more fields (canRelay).

// fieldSet reports, for a table the scope lists, whether it is projected
// and to which fields.
func (s Scope) fieldSet(table string) ([]string, bool) {
	if s.All {
		return nil, false
	}
	t := s.table(table)
	if t == nil || !t.Projected {
		return nil, false
	}
	return t.Fields, true
}

// Projects reports whether the scope holds only some fields of table.
func (s Scope) Projects(table string) bool {
	_, ok := s.fieldSet(table)
	return ok
}

// FieldAllowed reports whether the scope holds field of table's records
// (the table must be listed; see Selects).
func (s Scope) FieldAllowed(table, field string) bool {
	fs, ok := s.fieldSet(table)
	return !ok || hasField(fs, field)
}

func hasField(sorted []string, f string) bool {
	_, ok := slices.BinarySearch(sorted, f)
	return ok
}

// coversFields reports whether t holds every field o holds.
func (t *TableScope) coversFields(o *TableScope) bool {
	if !t.Projected {
		return true
	}
	if !o.Projected {
		return false
	}
	for _, f := range o.Fields {
		if !hasField(t.Fields, f) {
			return false
		}
	}
	return true
}

// validFields checks a table's Fields, and that its selection reads only
// fields it holds (a replica evaluates its scope on its own records).
func (s Scope) validFields(t *TableScope) error {
	if !t.Projected && len(t.Fields) > 0 {
		return fmt.Errorf("replication: scope of %q names fields but is not projected", t.Table)
	}
	for i, f := range t.Fields {
		if f == "" || i > 0 && t.Fields[i-1] >= f {
			return fmt.Errorf("replication: scope of %q: fields empty, not sorted or not unique", t.Table)
		}
	}
	if why := s.unreadable(t); why != "" {
		return fmt.Errorf("replication: scope of %q %s", t.Table, why)
	}
	return nil
}

// unreadable says why t's selection reads a field the scope does not hold
// ("" if it does not): its Where, its filter, or a relation through a
// field of a projected (or unlisted) table.
func (s Scope) unreadable(t *TableScope) string {
	if t.Projected {
		for _, m := range t.Where {
			if !hasField(t.Fields, m.Field) {
				return fmt.Sprintf("selects by field %q, which it does not hold", m.Field)
			}
		}
		if t.Filter != "" {
			x, err := compiled(t.Filter)
			if err != nil {
				return err.Error()
			}
			if x.ReadsAll() {
				return "has a filter reading record[...] but holds only some fields"
			}
			for _, f := range x.Fields() {
				if !hasField(t.Fields, f) {
					return fmt.Sprintf("has a filter reading field %q, which it does not hold", f)
				}
			}
		}
	}
	for _, r := range t.Related {
		rt := s.table(r.Table)
		if rt == nil {
			return fmt.Sprintf("relates to %q, which the scope does not list", r.Table)
		}
		if rt.Projected && !hasField(rt.Fields, r.Field) {
			return fmt.Sprintf("relates through field %q of %q, which it does not hold", r.Field, r.Table)
		}
	}
	return ""
}

// Restrict returns s narrowed to lim, a node's read limit: only the
// tables lim lists (the system tables always), each projected to the
// fields lim allows. A table of s whose selection would read a field it
// may not read (a filter, a Where, a relation) is left out whole: the
// holder could not evaluate it, and widening the fields would show what
// it may not read. A system table lim lists with a filter (its own sync
// errors) is selected by that filter. lim.All leaves s as it is.
func (s Scope) Restrict(lim Scope) Scope {
	if lim.All {
		return s
	}
	out := Scope{Profile: s.Profile, Device: s.Device}
	for _, t := range s.tablesOrAll(lim) {
		lt := lim.table(t.Table)
		if lt == nil {
			if IsSystemTable(t.Table) {
				out.Tables = append(out.Tables, t)
			}
			continue
		}
		nt := t
		nt.Where = slices.Clone(t.Where)
		nt.Related = slices.Clone(t.Related)
		switch {
		case lt.Projected && t.Projected:
			nt.Fields = intersectSorted(t.Fields, lt.Fields)
		case lt.Projected:
			nt.Projected, nt.Fields = true, slices.Clone(lt.Fields)
		default:
			nt.Fields = slices.Clone(t.Fields)
		}
		for _, m := range lt.Where {
			if !slices.ContainsFunc(nt.Where, func(x FieldMatch) bool { return x.Field == m.Field && string(x.Value) == string(m.Value) }) {
				nt.Where = append(nt.Where, m)
			}
		}
		sort.SliceStable(nt.Where, func(i, j int) bool { return nt.Where[i].Field < nt.Where[j].Field })
		switch {
		case lt.Filter == "" || nt.Filter == lt.Filter || strings.HasSuffix(nt.Filter, ") && ("+lt.Filter+")"):
		case nt.Filter != "":
			nt.Filter = "(" + nt.Filter + ") && (" + lt.Filter + ")"
		case lt.Filter != "":
			nt.Filter = lt.Filter
		}
		if lt.IntervalMs > nt.IntervalMs {
			nt.IntervalMs = lt.IntervalMs
		}
		out.Tables = append(out.Tables, nt)
	}
	// System tables lim filters that s holds implicitly.
	for _, lt := range lim.Tables {
		if IsSystemTable(lt.Table) && !s.All && s.table(lt.Table) == nil {
			out.Tables = append(out.Tables, lt)
		}
	}
	sort.Slice(out.Tables, func(i, j int) bool { return out.Tables[i].Table < out.Tables[j].Table })
	// Leave out tables that cannot be evaluated, until none is left (a
	// table left out can break the relations of another).
	for {
		drop := -1
		for i := range out.Tables {
			if out.unreadable(&out.Tables[i]) != "" {
				drop = i
				break
			}
		}
		if drop < 0 {
			if len(out.Tables) == 0 {
				out.Tables = nil
			}
			return out
		}
		out.Tables = slices.Delete(out.Tables, drop, drop+1)
	}
}

// tablesOrAll returns s's tables, or lim's for a scope of everything.
func (s Scope) tablesOrAll(lim Scope) []TableScope {
	if !s.All {
		return s.Tables
	}
	out := make([]TableScope, 0, len(lim.Tables))
	for _, lt := range lim.Tables {
		out = append(out, TableScope{Table: lt.Table})
	}
	return out
}

func intersectSorted(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if hasField(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// ProjectWrite returns w without the fields the scope does not hold (w
// itself when it holds them all). A write left with no field still makes
// the record exist. An elided write (no values) keeps its field names if
// it would keep none: it must name what its context supersedes.
func (s Scope) ProjectWrite(w *crdt.Write) *crdt.Write {
	fs, ok := s.fieldSet(w.Table)
	if !ok || w.Delete {
		return w
	}
	n := 0
	for _, f := range w.Fields {
		if hasField(fs, f.Name) {
			n++
		}
	}
	if n == len(w.Fields) || n == 0 && w.Elided {
		return w
	}
	c := *w
	c.Fields = make([]crdt.FieldValue, 0, n)
	for _, f := range w.Fields {
		if hasField(fs, f.Name) {
			c.Fields = append(c.Fields, f)
		}
	}
	return &c
}

// projectWrites projects each write (same length and order).
func (s Scope) projectWrites(ws []*crdt.Write) []*crdt.Write {
	if s.All {
		return ws
	}
	var out []*crdt.Write
	for i, w := range ws {
		p := s.ProjectWrite(w)
		if p == w {
			continue
		}
		if out == nil {
			out = slices.Clone(ws)
		}
		out[i] = p
	}
	if out == nil {
		return ws
	}
	return out
}

// ProjectRecord returns rec without the fields the scope does not hold
// (rec itself when it holds them all). The fields' registers are
// independent, so the projection of a merge is the merge of the
// projections, as for writes applied.
func (s Scope) ProjectRecord(table string, rec *crdt.Record) *crdt.Record {
	fs, ok := s.fieldSet(table)
	if !ok {
		return rec
	}
	keep := 0
	for _, f := range rec.Fields {
		if hasField(fs, f.Name) {
			keep++
		}
	}
	if keep == len(rec.Fields) {
		return rec
	}
	c := *rec
	c.Fields = make([]crdt.Field, 0, keep)
	for _, f := range rec.Fields {
		if hasField(fs, f.Name) {
			c.Fields = append(c.Fields, f)
		}
	}
	return &c
}

// canRelay reports whether this replica may send the peer its write (of
// origin) or its record of table: a replica whose scope projects the
// table holds other origins' writes and every record of it without the
// fields it does not hold, which a peer holding more fields would take
// as complete; it serves them only to a peer whose scope projects the
// table to no more fields. Its own writes are whole. Local.Stripped
// names the tables whose change log may hold writes stripped by a
// projection (now or before): other origins' writes to them are not
// relayed at all (the hub brings them).
func (s *Session) canRelay(table string, origin hlc.NodeID, record bool) bool {
	if !record && origin == s.l.Node {
		return true
	}
	if !record && s.l.Stripped != nil && s.l.Stripped(table) {
		return false
	}
	mine, projected := s.l.scope().fieldSet(table)
	if !projected {
		return true
	}
	theirs, ok := s.peer.Scope.fieldSet(table)
	if !ok {
		return false
	}
	for _, f := range theirs {
		if !hasField(mine, f) {
			return false
		}
	}
	return true
}

// readChange applies a change of this replica's scope to the fields and
// tables it holds (a hub assigned a scope after the read permissions
// changed), as a narrowed profile does: the records of a table that left
// the scope are purged (dropped, hidden: they come back only whole); a
// table projected to fewer fields keeps its records without the others
// (each is purged and its projection merged back, shown); a table
// projected to more fields, or listed again, is purged and listed anew
// by the next reconciliation with a hub (rescan), which fetches its
// records whole. On an error the caller keeps the old scope and retries
// at the next assignment; what was done stays done (purged or projected
// records are never shown with fields the new scope leaves out).
func (l *Local) readChange(old, nu Scope) error {
	if old.All && nu.All {
		return nil
	}
	scn := l.Capabilities().Scan
	if scn == nil || l.Capabilities().Hidden == nil {
		return fmt.Errorf("replication: the scope's tables or fields changed (%s to %s) and the store cannot purge or project its records (it lacks Scan, Tables or ListHidden)", old, nu)
	}
	tables, err := scn.Tables()
	if err != nil {
		return err
	}
	for _, t := range nu.Tables {
		if !slices.Contains(tables, t.Table) {
			tables = append(tables, t.Table)
		}
	}
	for _, t := range tables {
		oldL, newL := old.lists([]byte(t)), nu.lists([]byte(t))
		oldF, oldP := old.fieldSet(t)
		newF, newP := nu.fieldSet(t)
		widened := newL && (!oldL || oldP && (!newP || !subsetSorted(newF, oldF)))
		narrowed := newL && newP && (!oldP || !subsetSorted(oldF, newF))
		var err error
		switch {
		case !newL && oldL:
			err = l.purgeTable(scn, t, nil)
		case widened:
			if oldL {
				err = l.purgeTable(scn, t, nil)
			}
			l.addRescan(t)
		case narrowed:
			err = l.purgeTable(scn, t, &nu)
		}
		if err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
	}
	return nil
}

func subsetSorted(a, b []string) bool {
	for _, x := range a {
		if !hasField(b, x) {
			return false
		}
	}
	return true
}

// purgeTable purges every record of table held here (shown or hidden);
// with project, a shown record's projection by it is merged back and
// shown again.
func (l *Local) purgeTable(scn scanner, table string, project *Scope) error {
	type held struct {
		id  string
		rec *crdt.Record
	}
	var shown []held
	if err := eachRecord(scn, table, func(e store.RecordEntry) error {
		shown = append(shown, held{e.ID, e.Record})
		return nil
	}); err != nil {
		return err
	}
	var hidden []string
	if lister := l.Capabilities().Hidden; lister != nil {
		for _, h := range lister.ListHidden(-1) {
			if h[0] == table {
				hidden = append(hidden, h[1])
			}
		}
	}
	purge := func(ids []string) error {
		_, err := l.Store.ApplyRemoteScoped(l.Clock, nil, nil, func(b Batch, _ *store.Result) error {
			for _, id := range ids {
				rec, err := l.Store.GetAny(table, id)
				if err != nil {
					continue
				}
				b.Purge(table, id, rec.Applied)
			}
			return b.Err()
		})
		return err
	}
	for len(hidden) > 0 {
		n := min(len(hidden), 1000)
		if err := purge(hidden[:n]); err != nil {
			return err
		}
		hidden = hidden[n:]
	}
	for len(shown) > 0 {
		n := min(len(shown), 1000)
		page := shown[:n]
		shown = shown[n:]
		var ids []string
		for _, h := range page {
			if project == nil || project.ProjectRecord(table, h.rec) != h.rec {
				ids = append(ids, h.id)
			}
		}
		if err := purge(ids); err != nil {
			return err
		}
		if project == nil {
			continue
		}
		for _, h := range page {
			p := project.ProjectRecord(table, h.rec)
			if p == h.rec {
				continue
			}
			_, err := l.Store.MergeRecordScoped(l.Clock, table, h.id, p, func(b Batch, _ *crdt.Record) error {
				b.SetHidden(table, h.id, false, nil)
				return b.Err()
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}
