package node

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// Index and view declarations. A hub distributes the secondary indexes
// and the views of its configuration to every replica through two system
// tables, as it does the table policies: every replica builds and keeps
// the indexes declared (internal/replicacore) and lists and runs the
// views.
const (
	// IndexTable holds one record per declared index, its id the index
	// name: fields "table" (a string) and "fields" (a list of strings).
	IndexTable = "_replicad_index"
	// ViewTable holds one record per declared view, its id the view name:
	// fields "table", "where" (strings) and "order" (a list of strings).
	ViewTable = "_replicad_view"
	// PublisherField, in a record of IndexTable or ViewTable, is the node
	// id of the hub that wrote the declaration (a string). A hub deletes
	// only the declarations it wrote, and those without the field
	// (written by older versions): in a cluster of hubs, one with other
	// declarations (or none) leaves the others' in place.
	PublisherField = "hub"
)

// ViewDef is a declared view: a named query (table, where, order) whose
// where clause may read the asking device's attributes (device.*).
type ViewDef struct {
	Name  string
	Table string
	Where string
	Order []string
}

func (v ViewDef) equal(o ViewDef) bool {
	return v.Name == o.Name && v.Table == o.Table && v.Where == o.Where && sameStrings(v.Order, o.Order)
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func strList(v []string) crdt.Value {
	xs := make([]any, len(v))
	for i, s := range v {
		xs[i] = s
	}
	return crdt.MustValue(xs)
}

// strField is rec's field name as a string ("" and false if absent or
// not a string).
func strField(rec *crdt.Record, name string) (string, bool) {
	v, ok := rec.Get(name)
	if !ok {
		return "", false
	}
	x, err := v.Decode()
	s, isStr := x.(string)
	return s, err == nil && isStr
}

// listField is rec's field name as a list of strings (false if absent or
// not such a list).
func listField(rec *crdt.Record, name string) ([]string, bool) {
	v, ok := rec.Get(name)
	if !ok {
		return nil, false
	}
	x, err := v.Decode()
	xs, isList := x.([]any)
	if err != nil || !isList {
		return nil, false
	}
	out := make([]string, 0, len(xs))
	for _, e := range xs {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// PublishIndexes makes IndexTable hold defs (on a hub, at start: its
// configuration's): a declaration that differs is written, and one not in
// defs that this hub wrote (PublisherField) is deleted, so that every
// replica builds, rebuilds or drops the index. Another hub's declarations
// stay; two hubs declaring one name differently: the last write wins, as
// for any record.
func (n *Node) PublishIndexes(defs []store.IndexDef) error {
	want := map[string]store.IndexDef{}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return err
		}
		if _, dup := want[d.Name]; dup {
			return fmt.Errorf("%w: index %s declared twice", store.ErrInvalid, d.Name)
		}
		want[d.Name] = d
	}
	have, err := n.readIndexes()
	if err != nil {
		return err
	}
	return publish(n, IndexTable, want, have,
		func(a, b store.IndexDef) bool { return a.Table == b.Table && sameStrings(a.Fields, b.Fields) },
		func(d store.IndexDef) []crdt.FieldValue {
			return []crdt.FieldValue{{Name: "table", Value: crdt.MustValue(d.Table)}, {Name: "fields", Value: strList(d.Fields)}}
		})
}

// PublishViews makes ViewTable hold views (on a hub, at start), as
// PublishIndexes does for indexes.
func (n *Node) PublishViews(views []ViewDef) error {
	want := map[string]ViewDef{}
	for _, v := range views {
		if !store.ValidID(v.Name) || !store.ValidTable(v.Table) {
			return fmt.Errorf("%w: view %q on table %q", store.ErrInvalid, v.Name, v.Table)
		}
		if _, dup := want[v.Name]; dup {
			return fmt.Errorf("%w: view %s declared twice", store.ErrInvalid, v.Name)
		}
		want[v.Name] = v
	}
	have, err := n.readViews()
	if err != nil {
		return err
	}
	return publish(n, ViewTable, want, have, ViewDef.equal,
		func(v ViewDef) []crdt.FieldValue {
			return []crdt.FieldValue{{Name: "table", Value: crdt.MustValue(v.Table)},
				{Name: "where", Value: crdt.MustValue(v.Where)}, {Name: "order", Value: strList(v.Order)}}
		})
}

// publish writes each declaration of want that have (the well-formed
// records of table) lacks, holds differently or holds without a publisher,
// and deletes every record of table not in want (malformed ones too) that
// this hub published or that names no publisher, in name order.
func publish[D any](n *Node, table string, want, have map[string]D, equal func(a, b D) bool, fields func(D) []crdt.FieldValue) error {
	self := n.id.String()
	names := make([]string, 0, len(want)+len(have))
	for name := range want {
		names = append(names, name)
	}
	by := map[string]string{} // the publisher of each record ("": none)
	if err := n.scanDecls(table, func(id string, rec *crdt.Record) {
		by[id], _ = strField(rec, PublisherField)
		if _, ok := want[id]; !ok {
			names = append(names, id)
		}
	}); err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		w, keep := want[name]
		h, held := have[name]
		switch {
		case keep && held && equal(w, h) && by[name] != "":
			continue
		case keep:
			fs := append(fields(w), crdt.FieldValue{Name: PublisherField, Value: crdt.MustValue(self)})
			if _, err := n.Write(table, name, fs, false, nil); err != nil {
				return err
			}
		case by[name] != "" && by[name] != self:
			continue // another hub's
		default:
			if _, err := n.Write(table, name, nil, true, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// declCache keeps the declarations read from IndexTable and ViewTable
// until the store's version of their table moves.
type declCache struct {
	mu      sync.Mutex
	ixVer   uint64
	ixs     map[string]store.IndexDef // nil: not read
	viewVer uint64
	views   map[string]ViewDef
}

// scanDecls calls fn with every live record of table.
func (n *Node) scanDecls(table string, fn func(id string, rec *crdt.Record)) error {
	after := ""
	for {
		page, next, err := n.st.Scan(table, after, 500)
		if err != nil {
			return err
		}
		for _, e := range page {
			if e.Record.Exists() {
				fn(e.ID, e.Record)
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// readIndexes reads IndexTable (well-formed declarations only).
func (n *Node) readIndexes() (map[string]store.IndexDef, error) {
	out := map[string]store.IndexDef{}
	err := n.scanDecls(IndexTable, func(id string, rec *crdt.Record) {
		t, ok1 := strField(rec, "table")
		fs, ok2 := listField(rec, "fields")
		d := store.IndexDef{Name: id, Table: t, Fields: fs}
		if ok1 && ok2 && d.Validate() == nil {
			out[id] = d
		}
	})
	return out, err
}

// readViews reads ViewTable (well-formed declarations only).
func (n *Node) readViews() (map[string]ViewDef, error) {
	out := map[string]ViewDef{}
	err := n.scanDecls(ViewTable, func(id string, rec *crdt.Record) {
		t, ok1 := strField(rec, "table")
		w, ok2 := strField(rec, "where")
		o, ok3 := listField(rec, "order")
		if ok1 && ok2 && ok3 && store.ValidTable(t) {
			out[id] = ViewDef{Name: id, Table: t, Where: w, Order: o}
		}
	})
	return out, err
}

// DeclaredIndexes returns the indexes the hubs declared (IndexTable), by
// name.
func (n *Node) DeclaredIndexes() ([]store.IndexDef, error) {
	c := &n.decls
	ver := n.st.TableVersion(IndexTable) // before the read: a later change moves it
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ixs == nil || c.ixVer != ver {
		m, err := n.readIndexes()
		if err != nil {
			return nil, err
		}
		c.ixs, c.ixVer = m, ver
	}
	out := make([]store.IndexDef, 0, len(c.ixs))
	for _, d := range c.ixs {
		d.Fields = append([]string(nil), d.Fields...)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeclaredViews returns the views the hubs declared (ViewTable), by name.
func (n *Node) DeclaredViews() ([]ViewDef, error) {
	c := &n.decls
	ver := n.st.TableVersion(ViewTable)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil || c.viewVer != ver {
		m, err := n.readViews()
		if err != nil {
			return nil, err
		}
		c.views, c.viewVer = m, ver
	}
	out := make([]ViewDef, 0, len(c.views))
	for _, v := range c.views {
		v.Order = append([]string(nil), v.Order...)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrNoView is the error of DeclaredView for a name no hub declared.
var ErrNoView = errors.New("no such view")

// DeclaredView returns the declared view name.
func (n *Node) DeclaredView(name string) (ViewDef, error) {
	vs, err := n.DeclaredViews()
	if err != nil {
		return ViewDef{}, err
	}
	for _, v := range vs {
		if v.Name == name {
			return v, nil
		}
	}
	return ViewDef{}, fmt.Errorf("%w: %q", ErrNoView, name)
}

// IndexesOff is the IndexStatus error of a declared index on a store
// encrypted at rest: index keys would hold field values in the clear, so
// the replica keeps none and queries scan.
const IndexesOff = "off: the store is encrypted at rest (index keys would hold field values in the clear); queries scan"

// IndexStatus is the indexes of GET /v1/status: every index declared
// (IndexTable) or kept by the store, with its build here, by name.
func (n *Node) IndexStatus() []api.IndexStatus {
	decl, err := n.DeclaredIndexes()
	if err != nil {
		decl = nil
	}
	kept := map[string]store.IndexInfo{}
	for _, x := range n.st.Indexes() {
		kept[x.Name] = x
	}
	out := []api.IndexStatus{}
	seen := map[string]bool{}
	for _, d := range decl {
		s := api.IndexStatus{Name: d.Name, Table: d.Table, Fields: d.Fields}
		if x, ok := kept[d.Name]; ok && x.IndexDef.Table == d.Table && sameStrings(x.Fields, d.Fields) {
			s.Built, s.Indexed = x.Built, x.Indexed
		} else if n.st.Encrypted() {
			s.Error = IndexesOff
		}
		out = append(out, s)
		seen[d.Name] = true
	}
	for _, x := range n.st.Indexes() {
		if !seen[x.Name] {
			out = append(out, api.IndexStatus{Name: x.Name, Table: x.Table, Fields: x.Fields, Built: x.Built, Indexed: x.Indexed})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
