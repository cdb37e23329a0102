package agent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Permission is one permission rule of the config file: the node ids (or
// id prefixes, "HEX/BITS" as `replicad tls cert create` prints them) it
// applies to, and what those nodes may write.
//
//	permission "technicians" {
//	  nodes = ["a1b2c3d400000000/32"]
//	  write = ["jobs:status", "jobs:notes", "timesheets"]
//	  read  = ["jobs", "timesheets", "customers:name"]
//	}
//
// A write entry "TABLE" allows every field of the table and deletes;
// "TABLE:FIELD" allows setting that field (not deleting the record, which
// clears every field). A node matching no rule is not restricted; a node
// matching several may write what any of them allows.
//
// Read lists, with the same syntax, what the nodes may read: "TABLE" is
// every field of the table, "TABLE:FIELD" one field (the record's
// existence comes with any field). An empty Read (no read key) leaves
// reads unrestricted; the system tables (_replicad_*) are always readable.
type Permission struct {
	Name  string
	Nodes []string
	Write []string
	Read  []string
	// ReadSet tells an absent read key from an empty list (read = [] lets
	// the nodes read only the system tables).
	ReadSet bool
}

// permBlock is a permission block of the config file.
type permBlock struct {
	Name  string    `hcl:"name,label"`
	Nodes []string  `hcl:"nodes"`
	Write []string  `hcl:"write,optional"`
	Read  *[]string `hcl:"read,optional"`
}

// nodeMatch is a node id with the number of leading bits that must match.
type nodeMatch struct {
	id   uint64
	bits int
}

func (m nodeMatch) matches(n hlc.NodeID) bool {
	if m.bits >= 64 {
		return uint64(n) == m.id
	}
	mask := ^uint64(0) << (64 - m.bits)
	return uint64(n)&mask == m.id&mask
}

func parseNodeMatch(s string) (nodeMatch, error) {
	hexID, bits, hasBits := strings.Cut(s, "/")
	id, err := strconv.ParseUint(hexID, 16, 64)
	if err != nil || id == 0 || len(hexID) > 16 {
		return nodeMatch{}, fmt.Errorf("node %q: want a node id (hex) or ID/BITS", s)
	}
	m := nodeMatch{id: id, bits: 64}
	if hasBits {
		b, err := strconv.Atoi(bits)
		if err != nil || b < 1 || b > 64 {
			return nodeMatch{}, fmt.Errorf("node %q: BITS must be 1-64", s)
		}
		m.bits = b
	}
	return m, nil
}

// rule is a compiled Permission.
type rule struct {
	name   string
	nodes  []nodeMatch
	tables map[string]bool            // whole tables
	fields map[string]map[string]bool // table -> fields

	readSet    bool                       // the rule restricts reads
	readTables map[string]bool            // whole tables readable
	readFields map[string]map[string]bool // table -> readable fields
}

// permissions are the compiled rules.
type permissions struct {
	rules []rule
}

func compilePermissions(ps []Permission) (*permissions, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := &permissions{}
	for _, p := range ps {
		r := rule{name: p.Name, tables: map[string]bool{}, fields: map[string]map[string]bool{},
			readSet: p.ReadSet || len(p.Read) > 0, readTables: map[string]bool{}, readFields: map[string]map[string]bool{}}
		if len(p.Nodes) == 0 {
			return nil, keyErr("permission", "%q: nodes must list at least one node id", p.Name)
		}
		for _, n := range p.Nodes {
			m, err := parseNodeMatch(n)
			if err != nil {
				return nil, keyErr("permission", "%q: %v", p.Name, err)
			}
			r.nodes = append(r.nodes, m)
		}
		for _, w := range p.Write {
			table, field, hasField := strings.Cut(w, ":")
			if !store.ValidTable(table) || hasField && field == "" {
				return nil, keyErr("permission", "%q: write %q: want TABLE or TABLE:FIELD", p.Name, w)
			}
			if !hasField {
				r.tables[table] = true
				continue
			}
			if r.fields[table] == nil {
				r.fields[table] = map[string]bool{}
			}
			r.fields[table][field] = true
		}
		for _, rd := range p.Read {
			table, field, hasField := strings.Cut(rd, ":")
			if !store.ValidTable(table) || hasField && field == "" {
				return nil, keyErr("permission", "%q: read %q: want TABLE or TABLE:FIELD", p.Name, rd)
			}
			if !hasField {
				r.readTables[table] = true
				continue
			}
			if r.readFields[table] == nil {
				r.readFields[table] = map[string]bool{}
			}
			r.readFields[table][field] = true
		}
		out.rules = append(out.rules, r)
	}
	return out, nil
}

// check returns why origin may not make w, or "" if it may.
func (p *permissions) check(w *crdt.Write) string {
	if p == nil {
		return ""
	}
	var matched []string
	var denied []string
	for _, r := range p.rules {
		hit := false
		for _, m := range r.nodes {
			hit = hit || m.matches(w.Origin)
		}
		if !hit {
			continue
		}
		matched = append(matched, r.name)
		if r.tables[w.Table] {
			return ""
		}
		if w.Delete || r.fields[w.Table] == nil {
			continue
		}
		ok := len(w.Fields) > 0
		for _, f := range w.Fields {
			if !r.fields[w.Table][f.Name] {
				ok = false
				denied = append(denied, f.Name)
			}
		}
		if ok {
			return ""
		}
	}
	if len(matched) == 0 {
		return ""
	}
	sort.Strings(denied)
	denied = compactStrings(denied)
	switch {
	case w.Delete:
		return fmt.Sprintf("node %s (permissions %s) may not delete records of table %s", w.Origin, strings.Join(matched, ", "), w.Table)
	case len(denied) > 0:
		return fmt.Sprintf("node %s (permissions %s) may not write field(s) %s of table %s", w.Origin, strings.Join(matched, ", "), strings.Join(denied, ", "), w.Table)
	}
	return fmt.Sprintf("node %s (permissions %s) may not write table %s", w.Origin, strings.Join(matched, ", "), w.Table)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// enforcer applies the permission rules to remote writes on this node: a
// write outside its origin's permissions is elided before it is applied
// (its sequence number is kept, so the origin's later writes still apply;
// its values are stored and relayed nowhere), then the node writes back
// what the write would have replaced (a write whose context covers it, so
// that the origin, which applied its own write, converges too) and logs a
// sync error naming the origin, which reaches that device through
// _replicad_errors.
type enforcer struct {
	perms *permissions
	r     *replica

	mu       sync.Mutex
	rejected map[crdt.Dot]rejection // elided, not yet compensated
}

type rejection struct {
	w      *crdt.Write // the original write
	reason string
	// before is the record as this replica held it before the skeleton
	// was applied (nil if absent): an elided write still supersedes what
	// its context covers, so the values to write back are read first.
	before *crdt.Record
}

// admit returns writes with each write outside its origin's permissions
// replaced by its elided skeleton (same length and order).
func (e *enforcer) admit(writes []*crdt.Write) []*crdt.Write {
	var out []*crdt.Write
	for i, w := range writes {
		reason := e.perms.check(w)
		if reason == "" {
			continue
		}
		if out == nil {
			out = append([]*crdt.Write(nil), writes...)
		}
		out[i] = w.Elide()
		before, err := e.r.store.GetAny(w.Table, w.ID)
		if err != nil {
			before = nil
		}
		e.mu.Lock()
		if e.rejected == nil {
			e.rejected = map[crdt.Dot]rejection{}
		}
		e.rejected[w.Dot()] = rejection{w: w, reason: reason, before: before}
		e.mu.Unlock()
	}
	if out == nil {
		return writes
	}
	return out
}

// applied is told of applied remote writes: it compensates and logs the
// rejected ones that were applied (as skeletons) here.
func (e *enforcer) applied(writes []*crdt.Write, res *store.Result) {
	for i, w := range writes {
		e.mu.Lock()
		rj, ok := e.rejected[w.Dot()]
		if ok {
			delete(e.rejected, w.Dot())
		}
		e.mu.Unlock()
		if !ok || i >= len(res.Status) || res.Status[i] != store.Applied {
			continue
		}
		if err := e.compensate(rj); err != nil {
			e.r.a.log.Error("permission: compensating a rejected write failed", "origin", w.Origin, "seq", w.Seq, "table", w.Table, "id", w.ID, "error", err)
		}
	}
	// Rejections of writes that were not applied (duplicates, deferred)
	// are forgotten: a deferred write is judged again when it returns.
	e.mu.Lock()
	for _, w := range writes {
		delete(e.rejected, w.Dot())
	}
	e.mu.Unlock()
}

// compensate writes back, over the rejected write, what this replica
// shows for the fields it touched, and logs the sync error.
func (e *enforcer) compensate(rj rejection) error {
	w, rec := rj.w, rj.before
	losing := map[string][]byte{}
	winning := map[string][]byte{}
	var fields []crdt.FieldValue
	var names []string
	del := false
	switch {
	case rec == nil || !rec.Exists():
		// The record does not exist here: the origin created it (or wrote
		// to a deleted record); delete it over the write.
		del = true
		for _, f := range w.Fields {
			names = append(names, f.Name)
			losing[f.Name] = f.Value
		}
	case w.Delete:
		// Restore every visible field.
		rec.Visible(func(name string, v crdt.Value) {
			fields = append(fields, crdt.FieldValue{Name: name, Value: v})
			names = append(names, name)
			winning[name] = v
		})
		if len(fields) == 0 {
			return nil
		}
	default:
		for _, f := range w.Fields {
			v, ok := rec.Get(f.Name)
			if !ok {
				v = crdt.Cleared
			}
			fields = append(fields, crdt.FieldValue{Name: f.Name, Value: v})
			names = append(names, f.Name)
			losing[f.Name] = f.Value
			if ok {
				winning[f.Name] = v
			}
		}
	}
	se := &store.SyncError{Table: w.Table, Record: w.ID, Fields: names, Losing: losing, Winning: winning,
		Policy: "permission", Nodes: []uint64{uint64(w.Origin)}, Detail: "rejected: " + rj.reason}
	res, err := e.r.store.WriteWith(e.r.clock, w.Table, w.ID, fields, del, func(b *store.Batch, _ *store.WriteResult) error {
		b.AppendSyncError(se)
		return b.Err()
	})
	if err != nil {
		return err
	}
	e.r.out.wrote(res.Write.Seq)
	e.r.a.feed.notify()
	e.r.engine.Notify(res.Write)
	e.r.a.log.Warn("write rejected by permissions", "origin", w.Origin, "seq", w.Seq, "table", w.Table, "id", w.ID, "reason", rj.reason)
	// The origin learns of it through the replicated sync errors.
	return e.r.publishSyncError(fmt.Sprintf("perm-%s-%d", w.Origin, w.Seq), se)
}
