package replication

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/store"
)

// Scope says which records a replica holds: everything (a hub), or a list
// of tables, each whole or filtered (field equalities, a filter
// expression, records related to selected records). It travels in the
// handshake, so it is data; a hub assigns a device its scope from the
// device's offline profile (package profile) and enforces it.
type Scope struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	All     bool
	Tables  []TableScope // sorted by table, unique
	// Profile names the offline profile the scope comes from, if any.
	Profile string
	// Device are the device's attributes the filters read (device.user),
	// sorted by name, unique.
	Device []Attr
}

// Attr is one device attribute.
type Attr struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Name    string
	Value   string
}

// TableScope selects the records of one table: those whose fields equal
// all of Where and match Filter (when either is given), and those that a
// selected record of another table references (Related); with none of
// them, the whole table.
type TableScope struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Table   string
	Where   []FieldMatch
	// Filter is a filter expression (package filter), "" for none.
	Filter string
	// Related: the records whose id a selected record of Relation.Table
	// holds in Relation.Field come along ("related rows only").
	Related []Relation
	// IntervalMs is how often the replica re-evaluates which records of
	// the table it holds (0: at every sync); Priority orders the tables
	// when records are fetched (higher first).
	IntervalMs int64
	Priority   int32
	// Projected: the replica holds only the fields named in Fields (sorted,
	// unique) of the table's records, and the records' existence (read
	// permissions, scope_fields.go). A filter, Where or relation of a
	// projected table reads only those fields.
	Projected bool
	Fields    []string
}

// Relation names the field of another table's selected records that
// holds the ids of records to bring along.
type Relation struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Table   string
	Field   string
}

// FieldMatch is one equality: the field's last-writer-wins value is Value.
type FieldMatch struct {
	//lint:ignore U1000 read by the codec: its toarray option
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

// Validate checks a scope received from a peer (or built from a
// profile): names, values, filters that compile, relations to listed
// tables without cycles.
func (s Scope) Validate() error { return s.validate(true) }

// validate is Validate; without compile, filters are not compiled (a
// Hello's scope is checked in full only once its handshake is accepted:
// compiling is the costly part, and a refused handshake costs nothing).
func (s Scope) validate(compile bool) error {
	if s.All && len(s.Tables) > 0 {
		return fmt.Errorf("replication: scope is both all and a table list")
	}
	for i, a := range s.Device {
		if a.Name == "" || i > 0 && s.Device[i-1].Name >= a.Name {
			return fmt.Errorf("replication: scope device attributes empty, not sorted or not unique")
		}
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
		if t.Filter != "" && compile {
			// Compiled, not cached: a peer's scope is validated before
			// its handshake is accepted.
			if _, err := filter.Compile(t.Filter); err != nil {
				return fmt.Errorf("replication: scope of %q: %v", t.Table, err)
			}
		}
		for _, r := range t.Related {
			if r.Field == "" || s.table(r.Table) == nil {
				return fmt.Errorf("replication: scope of %q relates to %q.%q, which the scope does not list", t.Table, r.Table, r.Field)
			}
		}
		if t.IntervalMs < 0 {
			return fmt.Errorf("replication: scope of %q has a negative interval", t.Table)
		}
		if err := s.validFields(&s.Tables[i]); err != nil {
			return err
		}
	}
	// Relations must not loop: selecting a record would depend on itself.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("replication: scope relations form a cycle through %q", name)
		case 2:
			return nil
		}
		state[name] = 1
		for _, r := range s.table(name).Related {
			if err := visit(r.Table); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, t := range s.Tables {
		if err := visit(t.Table); err != nil {
			return err
		}
	}
	return nil
}

// lists reports whether the scope names the table (whole or filtered);
// a write to a table it does not name is outside it, whatever the write.
func (s Scope) lists(table []byte) bool {
	if s.All || IsSystemTable(string(table)) {
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

// SystemPrefix starts the names of the tables the daemon itself
// replicates (policies, sync errors, duplicate flags): every scope holds
// them whole.
const SystemPrefix = "_replicad_"

// IsSystemTable reports whether table is one of the daemon's own.
func IsSystemTable(table string) bool { return strings.HasPrefix(table, SystemPrefix) }

// filtered reports whether the table scope selects only some records.
func (t *TableScope) filtered() bool { return len(t.Where) > 0 || t.Filter != "" || len(t.Related) > 0 }

// NeedsRecord reports whether deciding Selects for table needs the record's
// state (the table is filtered).
func (s Scope) NeedsRecord(table string) bool {
	if s.All {
		return false
	}
	t := s.table(table)
	return t != nil && t.filtered()
}

// Eval is what selecting a record reads besides the record: the time (for
// filters) and the ids that related tables' selected records reference.
// A nil *Eval evaluates filters at the wall clock and relates nothing.
type Eval struct {
	NowMs int64
	// Related returns the ids the selected records of table hold in
	// field (nil: none).
	Related func(table, field string) map[string]bool
}

// Selects reports whether record id of table belongs to the scope. rec is
// the record's current state as the caller holds it (nil if it holds
// none). A deleted record of a listed table is selected, so that deletes
// reach every replica that may hold it.
func (s Scope) Selects(table, id string, rec *crdt.Record, ev *Eval) bool {
	if s.All {
		return true
	}
	t := s.table(table)
	if t == nil {
		return IsSystemTable(table)
	}
	if !t.filtered() {
		return true
	}
	if rec == nil {
		return false
	}
	if rec.Deleted() {
		return true
	}
	if len(t.Where) > 0 || t.Filter != "" {
		ok := true
		for _, m := range t.Where {
			v, has := rec.Get(m.Field)
			if !has || !bytes.Equal(v, m.Value) {
				ok = false
				break
			}
		}
		if ok && t.Filter != "" {
			ok = s.match(t.Filter, id, rec, ev)
		}
		if ok {
			return true
		}
	}
	if ev != nil && ev.Related != nil {
		for _, r := range t.Related {
			if ev.Related(r.Table, r.Field)[id] {
				return true
			}
		}
	}
	return false
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
		if st == nil || st.filtered() || !st.coversFields(&ot) {
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
		if t.Filter != "" {
			fmt.Fprintf(&b, "{%s}", t.Filter)
		}
		for _, r := range t.Related {
			fmt.Fprintf(&b, "<%s.%s", r.Table, r.Field)
		}
		if t.Projected {
			fmt.Fprintf(&b, "(%s)", strings.Join(t.Fields, " "))
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
	if t == nil || len(t.Where) == 0 || t.Filter != "" || len(t.Related) > 0 {
		// Expression and related scopes: the sender's evaluation decides
		// (a write to a record it does not select is skipped; the
		// receiver refreshes a record it holds).
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
