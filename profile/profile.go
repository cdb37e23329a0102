// Package profile reads the offline profiles a hub assigns its devices
// (an HCL file, reloadable while the hub runs) and turns a device's
// profile into the replication.Scope the hub enforces: per table a filter
// (package filter), related tables, a sync interval and a priority.
//
//	profile "technician" {
//	  table "bookings" {
//	    filter   = "owner == device.user && start >= today"
//	    interval = "5m"
//	    priority = 10
//	  }
//	  table "workorders" { related = ["bookings.workorder"] }
//	  table "customers"  { related = ["workorders.customer"] }
//	  table "products"   {}                  # the whole table
//	}
//	group "field" {
//	  profile = "technician"
//	  devices = ["4f2a9c0d11b3e7a5"]
//	}
//	device "4f2a9c0d11b3e7a5" {
//	  attributes = { user = "alice" }      # device.user in filters
//	}
//	default_profile = "technician"         # devices assigned nothing else
//
// A device's profile is its own block's, else its group's, else the
// default; a device with none gets every record. A table's interval is at
// least 5 minutes and at most a day (default 15 minutes); a table follows
// the shorter interval of a table it relates to. Errors name the file,
// line and column, and for a filter the position in the expression.
package profile

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Interval bounds and default.
const (
	MinInterval     = 5 * time.Minute
	MaxInterval     = 24 * time.Hour
	DefaultInterval = 15 * time.Minute
)

type fileConfig struct {
	Profiles       []profileBlock `hcl:"profile,block"`
	Groups         []groupBlock   `hcl:"group,block"`
	Devices        []deviceBlock  `hcl:"device,block"`
	DefaultProfile string         `hcl:"default_profile,optional"`
}

type profileBlock struct {
	Name   string       `hcl:"name,label"`
	Tables []tableBlock `hcl:"table,block"`
}

type tableBlock struct {
	Name       string         `hcl:"name,label"`
	FilterExpr hcl.Expression `hcl:"filter,optional"`
	Related    []string       `hcl:"related,optional"`
	Interval   string         `hcl:"interval,optional"`
	Priority   int            `hcl:"priority,optional"`
	Filter     string         // FilterExpr's value
}

type groupBlock struct {
	Name    string   `hcl:"name,label"`
	Profile string   `hcl:"profile"`
	Devices []string `hcl:"devices,optional"`
}

type deviceBlock struct {
	ID         string            `hcl:"id,label"`
	Profile    string            `hcl:"profile,optional"`
	Group      string            `hcl:"group,optional"`
	Attributes map[string]string `hcl:"attributes,optional"`
}

// Set is a loaded profiles file.
type Set struct {
	profiles map[string]replication.Scope // without device attributes
	devices  map[hlc.NodeID]deviceBlock
	groupOf  map[hlc.NodeID]string
	groups   map[string]groupBlock
	def      string
}

// Load reads and checks a profiles file.
func Load(path string) (*Set, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	return Parse(path, src)
}

// Parse reads and checks profiles from src (name is the file name used in
// error messages).
func Parse(name string, src []byte) (*Set, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, name)
	if diags.HasErrors() {
		return nil, fmt.Errorf("profiles: %s", diags.Error())
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return nil, fmt.Errorf("profiles: %s", diags.Error())
	}
	set := &Set{profiles: map[string]replication.Scope{}, devices: map[hlc.NodeID]deviceBlock{}, groupOf: map[hlc.NodeID]string{}, groups: map[string]groupBlock{}, def: fc.DefaultProfile}
	for _, pb := range fc.Profiles {
		if _, dup := set.profiles[pb.Name]; dup {
			return nil, fmt.Errorf("profiles: %s: profile %q defined twice", name, pb.Name)
		}
		sc, err := buildScope(name, pb)
		if err != nil {
			return nil, err
		}
		set.profiles[pb.Name] = sc
	}
	known := func(p string) bool { _, ok := set.profiles[p]; return ok }
	if set.def != "" && !known(set.def) {
		return nil, fmt.Errorf("profiles: %s: default_profile %q is not defined", name, set.def)
	}
	for _, g := range fc.Groups {
		if _, dup := set.groups[g.Name]; dup {
			return nil, fmt.Errorf("profiles: %s: group %q defined twice", name, g.Name)
		}
		if !known(g.Profile) {
			return nil, fmt.Errorf("profiles: %s: group %q: profile %q is not defined", name, g.Name, g.Profile)
		}
		set.groups[g.Name] = g
		for _, d := range g.Devices {
			id, err := hlc.ParseNodeID(d)
			if err != nil {
				return nil, fmt.Errorf("profiles: %s: group %q: device %q: %v", name, g.Name, d, err)
			}
			if prev, dup := set.groupOf[id]; dup {
				return nil, fmt.Errorf("profiles: %s: device %s is in groups %q and %q", name, d, prev, g.Name)
			}
			set.groupOf[id] = g.Name
		}
	}
	for _, d := range fc.Devices {
		id, err := hlc.ParseNodeID(d.ID)
		if err != nil {
			return nil, fmt.Errorf("profiles: %s: device %q: %v", name, d.ID, err)
		}
		if _, dup := set.devices[id]; dup {
			return nil, fmt.Errorf("profiles: %s: device %q defined twice", name, d.ID)
		}
		if d.Profile != "" && !known(d.Profile) {
			return nil, fmt.Errorf("profiles: %s: device %q: profile %q is not defined", name, d.ID, d.Profile)
		}
		if d.Group != "" {
			if _, ok := set.groups[d.Group]; !ok {
				return nil, fmt.Errorf("profiles: %s: device %q: group %q is not defined", name, d.ID, d.Group)
			}
			set.groupOf[id] = d.Group
		}
		for k := range d.Attributes {
			if k == "" || k == "id" || k == "group" {
				return nil, fmt.Errorf("profiles: %s: device %q: attribute name %q is reserved or empty", name, d.ID, k)
			}
		}
		set.devices[id] = d
	}
	return set, nil
}

// buildScope turns a profile block into a scope (device attributes are
// added per device).
func buildScope(file string, pb profileBlock) (replication.Scope, error) {
	sc := replication.Scope{Profile: pb.Name}
	byName := map[string]*tableBlock{}
	for i := range pb.Tables {
		tb := &pb.Tables[i]
		if !store.ValidTable(tb.Name) {
			return sc, fmt.Errorf("profiles: %s: profile %q: invalid table name %q", file, pb.Name, tb.Name)
		}
		if byName[tb.Name] != nil {
			return sc, fmt.Errorf("profiles: %s: profile %q: table %q listed twice", file, pb.Name, tb.Name)
		}
		byName[tb.Name] = tb
		if tb.FilterExpr == nil {
			continue
		}
		r := tb.FilterExpr.Range()
		at := fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
		v, diags := tb.FilterExpr.Value(nil)
		switch {
		case diags.HasErrors():
			return sc, fmt.Errorf("profiles: %s", diags.Error())
		case v.IsNull():
			continue
		case v.Type() != cty.String || !v.IsKnown():
			return sc, fmt.Errorf("profiles: %s: profile %q, table %q: filter must be a string", at, pb.Name, tb.Name)
		}
		tb.Filter = v.AsString()
		if _, err := filter.Compile(tb.Filter); err != nil {
			return sc, fmt.Errorf("profiles: %s: profile %q, table %q: %v", at, pb.Name, tb.Name, err)
		}
	}
	// Intervals, then the shorter interval of related tables.
	ivl := map[string]time.Duration{}
	for _, tb := range pb.Tables {
		d := DefaultInterval
		if tb.Interval != "" {
			var err error
			if d, err = time.ParseDuration(tb.Interval); err != nil {
				return sc, fmt.Errorf("profiles: %s: profile %q, table %q: interval %q: %v", file, pb.Name, tb.Name, tb.Interval, err)
			}
			if d < MinInterval || d > MaxInterval {
				return sc, fmt.Errorf("profiles: %s: profile %q, table %q: interval %s is outside %s to %s", file, pb.Name, tb.Name, d, MinInterval, "24h")
			}
		}
		ivl[tb.Name] = d
	}
	for _, tb := range pb.Tables {
		ts := replication.TableScope{Table: tb.Name, Filter: tb.Filter, Priority: int32(tb.Priority)}
		for _, r := range tb.Related {
			t, f, ok := strings.Cut(r, ".")
			if !ok || f == "" || byName[t] == nil {
				return sc, fmt.Errorf("profiles: %s: profile %q, table %q: related %q: want TABLE.FIELD of a table the profile lists", file, pb.Name, tb.Name, r)
			}
			ts.Related = append(ts.Related, replication.Relation{Table: t, Field: f})
		}
		sc.Tables = append(sc.Tables, ts)
	}
	sort.Slice(sc.Tables, func(i, j int) bool { return sc.Tables[i].Table < sc.Tables[j].Table })
	if err := sc.Validate(); err != nil {
		return sc, fmt.Errorf("profiles: %s: profile %q: %v", file, pb.Name, err)
	}
	// Follow the shorter interval of related tables (transitively; the
	// relations have no cycle).
	var eff func(name string, seen map[string]bool) time.Duration
	eff = func(name string, seen map[string]bool) time.Duration {
		d := ivl[name]
		if seen[name] {
			return d
		}
		seen[name] = true
		for _, r := range byName[name].Related {
			t, _, _ := strings.Cut(r, ".")
			d = min(d, eff(t, seen))
		}
		return d
	}
	for i := range sc.Tables {
		sc.Tables[i].IntervalMs = eff(sc.Tables[i].Table, map[string]bool{}).Milliseconds()
	}
	return sc, nil
}

// Profiles returns the profile names, sorted.
func (s *Set) Profiles() []string {
	out := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Profile returns a profile's scope (without device attributes).
func (s *Set) Profile(name string) (replication.Scope, bool) {
	sc, ok := s.profiles[name]
	return sc, ok
}

// For returns the scope a device is assigned: its own profile, else its
// group's, else the default; ok is false when it has none (it gets every
// record). The device's attributes (with id and group) are in the scope.
func (s *Set) For(id hlc.NodeID) (replication.Scope, bool) {
	d := s.devices[id]
	group := s.groupOf[id]
	name := d.Profile
	if name == "" && group != "" {
		name = s.groups[group].Profile
	}
	if name == "" {
		name = s.def
	}
	sc, ok := s.profiles[name]
	if !ok {
		return replication.Scope{}, false
	}
	attrs := map[string]string{"id": id.String()}
	if group != "" {
		attrs["group"] = group
	}
	for k, v := range d.Attributes {
		attrs[k] = v
	}
	sc.Device = nil
	for k, v := range attrs {
		sc.Device = append(sc.Device, replication.Attr{Name: k, Value: v})
	}
	sort.Slice(sc.Device, func(i, j int) bool { return sc.Device[i].Name < sc.Device[j].Name })
	sc.Tables = append([]replication.TableScope(nil), sc.Tables...)
	return sc, true
}

// TableCount is what a profile puts on a device from one table.
type TableCount struct {
	Table   string `json:"table"`
	Records int    `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// Preview counts, on st (a hub's store), the records and bytes of each
// table that sc selects at nowMs.
func Preview(st *store.Store, sc replication.Scope, nowMs int64) ([]TableCount, error) {
	ev := replication.NewEval(sc, st, nowMs)
	var out []TableCount
	for _, t := range sc.Tables {
		c := TableCount{Table: t.Table}
		after := ""
		for {
			page, next, err := st.Scan(t.Table, after, 1000)
			if err != nil {
				return nil, err
			}
			for _, e := range page {
				if !e.Record.Exists() || !sc.Selects(t.Table, e.ID, e.Record, ev) {
					continue
				}
				b, err := e.Record.MarshalBinary()
				if err != nil {
					return nil, err
				}
				c.Records++
				c.Bytes += int64(len(b))
			}
			if next == "" {
				break
			}
			after = next
		}
		out = append(out, c)
	}
	return out, nil
}
