package replica

import (
	"errors"
	"fmt"
	"strings"

	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/store"
)

// Indexes and views are declared on a hub (Config.Indexes and
// Config.Views, or the agent's configuration) and distributed to every
// replica through system tables, as table policies are. Every replica
// builds the indexes declared in the background and keeps them in the
// batch of every write; a declaration removed or changed on the hub drops
// or rebuilds the index everywhere (Indexes lists them with their build).
// A store encrypted at rest keeps no index (their keys would hold field
// values in the clear): queries scan, answered the same.
//
// A view is a named query: Query{View: name} takes its table, where and
// order from the declaration; device.* in its where clause reads the
// asking replica's attributes (Query.Device, else the replica's own: the
// ones its hub's offline profile assigned it, else Config.Device).

// Index declares a secondary index: the records of Table by the values
// of Fields, in order. A query comparing a prefix of the fields for
// equality, and/or ordered by the next ones, reads the index instead of
// scanning the table (Result.Plan names it).
type Index struct {
	Name   string
	Table  string
	Fields []string
}

// View is a named query declared on a hub: the records of Table that
// Where selects, in Order. Where may read device.* (the asking device's
// attributes).
type View struct {
	Name  string
	Table string
	Where string
	Order []string
}

// IndexInfo is a declared index and its build on this replica.
type IndexInfo struct {
	Name   string
	Table  string
	Fields []string
	// Built: every record is indexed and queries use the index; until
	// then Indexed counts the records the background build visited.
	Built   bool
	Indexed int64
	// Error says why this replica keeps no such index (its store is
	// encrypted at rest: queries scan); "" otherwise.
	Error string
}

// ErrNoView: a Query names a view no hub declared (it is also
// ErrNotFound).
var ErrNoView = errors.New("replica: no such view")

type noViewError struct{ name string }

func (e *noViewError) Error() string { return fmt.Sprintf("%v: %q", ErrNoView, e.name) }
func (e *noViewError) Is(target error) bool {
	return target == ErrNoView || target == ErrNotFound
}

// checkDecls validates Config.Indexes, Config.Views and Config.Device.
func (c *Config) checkDecls() error {
	if (len(c.Indexes) > 0 || len(c.Views) > 0) && c.Role != RoleHub {
		return fmt.Errorf("%w: Config.Indexes and Config.Views: only a hub declares indexes and views (Role is %q)", ErrInvalid, c.Role)
	}
	names := map[string]bool{}
	for _, x := range c.Indexes {
		if err := checkDeclTable("Config.Indexes", x.Name, x.Table); err != nil {
			return err
		}
		if err := (store.IndexDef{Name: x.Name, Table: x.Table, Fields: x.Fields}).Validate(); err != nil {
			return fmt.Errorf("%w: Config.Indexes: %v", ErrInvalid, strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
		}
		if names[x.Name] {
			return fmt.Errorf("%w: Config.Indexes: index %s declared twice", ErrInvalid, x.Name)
		}
		names[x.Name] = true
	}
	names = map[string]bool{}
	for _, v := range c.Views {
		if err := checkDeclTable("Config.Views", v.Name, v.Table); err != nil {
			return err
		}
		if names[v.Name] {
			return fmt.Errorf("%w: Config.Views: view %s declared twice", ErrInvalid, v.Name)
		}
		names[v.Name] = true
		if _, err := query.Prepare(query.Query{Table: v.Table, Where: v.Where, Order: v.Order}); err != nil {
			return fmt.Errorf("%w: Config.Views: view %s: %v", ErrInvalid, v.Name, err)
		}
	}
	for k := range c.Device {
		if k == "" {
			return fmt.Errorf("%w: Config.Device: an empty attribute name", ErrInvalid)
		}
	}
	return nil
}

func checkDeclTable(what, name, table string) error {
	if !store.ValidTable(name) {
		return fmt.Errorf("%w: %s: name %q: 1-%d characters from [A-Za-z0-9_.-]", ErrInvalid, what, name, store.MaxTableLen)
	}
	if !store.ValidTable(table) || strings.HasPrefix(table, "_replicad_") {
		return fmt.Errorf("%w: %s: %s: table %q: 1-%d characters from [A-Za-z0-9_.-], not a system table", ErrInvalid, what, name, table, store.MaxTableLen)
	}
	return nil
}

// publishDecls, on a hub, publishes the indexes and views of its Config,
// removing the ones it declared before and no longer does
// (node.PublishIndexes: another hub's stay).
func (r *Replica) publishDecls() error {
	if r.cfg.Role != RoleHub {
		return nil
	}
	defs := make([]store.IndexDef, len(r.cfg.Indexes))
	for i, x := range r.cfg.Indexes {
		defs[i] = store.IndexDef{Name: x.Name, Table: x.Table, Fields: x.Fields}
	}
	if err := r.n.PublishIndexes(defs); err != nil {
		return fmt.Errorf("publishing the indexes: %w", err)
	}
	views := make([]node.ViewDef, len(r.cfg.Views))
	for i, v := range r.cfg.Views {
		views[i] = node.ViewDef{Name: v.Name, Table: v.Table, Where: v.Where, Order: v.Order}
	}
	if err := r.n.PublishViews(views); err != nil {
		return fmt.Errorf("publishing the views: %w", err)
	}
	return nil
}

// Views returns the views the hubs declared, by name (nil once closed).
func (r *Replica) Views() []View {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil
	}
	vs, err := r.n.DeclaredViews()
	if err != nil {
		r.log.Error("reading the declared views", "error", err)
		return nil
	}
	out := make([]View, len(vs))
	for i, v := range vs {
		out[i] = View{Name: v.Name, Table: v.Table, Where: v.Where, Order: v.Order}
	}
	return out
}

// Indexes returns the indexes declared, and any other this replica keeps,
// with their build here, by name (nil once closed).
func (r *Replica) Indexes() []IndexInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil
	}
	xs := r.n.IndexStatus()
	out := make([]IndexInfo, len(xs))
	for i, x := range xs {
		out[i] = IndexInfo{Name: x.Name, Table: x.Table, Fields: x.Fields, Built: x.Built, Indexed: x.Indexed, Error: x.Error}
	}
	return out
}

// DeviceAttrs returns the attributes device.* reads when a Query gives
// none: those the hub's offline profile assigned this replica, else
// Config.Device.
func (r *Replica) DeviceAttrs() map[string]string {
	if attrs := r.engine.Scope().Device; len(attrs) > 0 {
		out := make(map[string]string, len(attrs))
		for _, a := range attrs {
			out[a.Name] = a.Value
		}
		return out
	}
	out := make(map[string]string, len(r.cfg.Device))
	for k, v := range r.cfg.Device {
		out[k] = v
	}
	return out
}

// resolve fills q from its view (if it names one) and its Device from the
// replica's attributes (if nil).
func (r *Replica) resolve(q Query) (Query, error) {
	if q.View != "" {
		if q.Table != "" || q.Where != "" || len(q.Order) > 0 {
			return q, fmt.Errorf("%w: query: view %s gives the table, where and order: give Table, Where and Order, or View", ErrInvalid, q.View)
		}
		v, err := r.n.DeclaredView(q.View)
		if errors.Is(err, node.ErrNoView) {
			return q, &noViewError{q.View}
		}
		if err != nil {
			return q, storeErr(err)
		}
		q.Table, q.Where, q.Order = v.Table, v.Where, v.Order
	}
	if q.Device == nil {
		q.Device = r.DeviceAttrs()
	}
	return q, nil
}
