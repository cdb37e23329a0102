package replication

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// Scope says which records a replica holds: everything (a hub), or a list
// of tables, each whole or filtered by field equalities. It travels in the
// handshake, so it is data; the offline-profile layer will add expressions
// behind the same methods.
type Scope struct {
	_struct bool `codec:",toarray"` //nolint:unused
	All     bool
	Tables  []TableScope // sorted by table, unique
}

// TableScope selects the records of one table whose fields equal all of
// Where (none: the whole table).
type TableScope struct {
	_struct bool `codec:",toarray"` //nolint:unused
	Table   string
	Where   []FieldMatch
}

// FieldMatch is one equality: the field's last-writer-wins value is Value.
type FieldMatch struct {
	_struct bool `codec:",toarray"` //nolint:unused
	Field   string
	Value   []byte // canonical crdt.Value
}

// FullScope is a hub's scope: every record.
func FullScope() Scope { return Scope{All: true} }

// TablesScope selects whole tables.
func TablesScope(tables ...string) Scope {
	s := Scope{}
	for _, t := range tables {
		s.Tables = append(s.Tables, TableScope{Table: t})
	}
	sort.Slice(s.Tables, func(i, j int) bool { return s.Tables[i].Table < s.Tables[j].Table })
	return s
}

// Validate checks a scope received from a peer.
func (s Scope) Validate() error {
	if s.All && len(s.Tables) > 0 {
		return fmt.Errorf("replication: scope is both all and a table list")
	}
	for i, t := range s.Tables {
		if !store.ValidTable(t.Table) {
			return fmt.Errorf("replication: scope names invalid table %q", t.Table)
		}
		if i > 0 && s.Tables[i-1].Table >= t.Table {
			return fmt.Errorf("replication: scope tables not sorted or not unique")
		}
		for _, m := range t.Where {
			if m.Field == "" {
				return fmt.Errorf("replication: scope of %q filters on an empty field name", t.Table)
			}
			if err := crdt.Value(m.Value).Validate(); err != nil {
				return fmt.Errorf("replication: scope of %q: %v", t.Table, err)
			}
		}
	}
	return nil
}

// lists reports whether the scope names the table (whole or filtered);
// a write to a table it does not name is outside it, whatever the write.
func (s Scope) lists(table []byte) bool {
	if s.All {
		return true
	}
	for i := range s.Tables {
		if s.Tables[i].Table == string(table) {
			return true
		}
	}
	return false
}

func (s Scope) table(name string) *TableScope {
	i := sort.Search(len(s.Tables), func(i int) bool { return s.Tables[i].Table >= name })
	if i < len(s.Tables) && s.Tables[i].Table == name {
		return &s.Tables[i]
	}
	return nil
}

// NeedsRecord reports whether deciding Selects for table needs the record's
// state (the table is filtered).
func (s Scope) NeedsRecord(table string) bool {
	if s.All {
		return false
	}
	t := s.table(table)
	return t != nil && len(t.Where) > 0
}

// Selects reports whether the record belongs to the scope. rec is the
// record's current state as the caller holds it (nil if it holds none). A
// deleted record of a listed table is selected, so that deletes reach
// every replica that may hold it.
func (s Scope) Selects(table string, rec *crdt.Record) bool {
	if s.All {
		return true
	}
	t := s.table(table)
	if t == nil {
		return false
	}
	if len(t.Where) == 0 {
		return true
	}
	if rec == nil {
		return false
	}
	if rec.Deleted() {
		return true
	}
	for _, m := range t.Where {
		v, ok := rec.Get(m.Field)
		if !ok || !bytes.Equal(v, m.Value) {
			return false
		}
	}
	return true
}

// Covers reports, conservatively, whether every record o selects is
// selected by s (so that what s's holder lacks, o's holder lacks too).
func (s Scope) Covers(o Scope) bool {
	if s.All {
		return true
	}
	if o.All {
		return false
	}
	for _, ot := range o.Tables {
		// Only a whole table covers: a filtered holder's view of which
		// records match may be older than o's.
		st := s.table(ot.Table)
		if st == nil || len(st.Where) > 0 {
			return false
		}
	}
	return true
}

// String describes the scope for logs and status.
func (s Scope) String() string {
	if s.All {
		return "all"
	}
	var b bytes.Buffer
	for i, t := range s.Tables {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(t.Table)
		for j, m := range t.Where {
			if j == 0 {
				b.WriteString("[")
			} else {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s=%s", m.Field, crdt.Value(m.Value))
			if j == len(t.Where)-1 {
				b.WriteString("]")
			}
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Touches reports whether w sets a field that the scope's filter for w's
// table reads: such a write may move its record out of (or into) the
// scope, so it is sent to a replica of that scope whatever the record's
// state, and the receiver decides (it hides the record, or fetches it
// whole).
func (s Scope) Touches(w *crdt.Write) bool {
	if s.All {
		return false
	}
	t := s.table(w.Table)
	if t == nil || len(t.Where) == 0 {
		return false
	}
	if w.Delete {
		return true // a delete clears the filter's fields too
	}
	for _, f := range w.Fields {
		for _, m := range t.Where {
			if f.Name == m.Field {
				return true
			}
		}
	}
	return false
}
