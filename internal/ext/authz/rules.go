package authz

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// rule is a compiled Permission.
type rule struct {
	name   string
	nodes  []config.NodeMatch
	tables map[string]bool            // whole tables
	fields map[string]map[string]bool // table -> fields

	readSet    bool                       // the rule restricts reads
	readTables map[string]bool            // whole tables readable
	readFields map[string]map[string]bool // table -> readable fields
}

// Rules are the compiled permission rules (nil: none).
type Rules struct {
	rules []rule
}

// Compile compiles the permission rules of the configuration (nil, nil
// when there are none).
func Compile(ps []config.Permission) (*Rules, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	if err := config.CheckPermissions(ps); err != nil {
		return nil, err
	}
	out := &Rules{}
	for _, p := range ps {
		r := rule{name: p.Name, tables: map[string]bool{}, fields: map[string]map[string]bool{},
			readSet: p.ReadSet || len(p.Read) > 0, readTables: map[string]bool{}, readFields: map[string]map[string]bool{}}
		for _, n := range p.Nodes {
			m, _ := config.ParseNodeMatch(n) // checked
			r.nodes = append(r.nodes, m)
		}
		config.AddTableFields(p.Write, r.tables, r.fields)
		config.AddTableFields(p.Read, r.readTables, r.readFields)
		out.rules = append(out.rules, r)
	}
	return out, nil
}

// Len is the number of rules.
func (p *Rules) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// Check returns why w's origin may not make it, or "" if it may.
func (p *Rules) Check(w *crdt.Write) string {
	if p == nil {
		return ""
	}
	var matched []string
	var denied []string
	for _, r := range p.rules {
		hit := false
		for _, m := range r.nodes {
			hit = hit || m.Matches(w.Origin)
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

// Readable returns what node may read: per table, nil for every field or
// the sorted readable fields; restricted false when nothing is
// restricted (no rule matches the node, or a matching rule has no read
// list). Matching several rules, the node may read what any allows. The
// system tables are not listed: they are always readable (see ReadLimit
// for the sync errors).
func (p *Rules) Readable(node hlc.NodeID) (map[string][]string, bool) {
	if p == nil {
		return nil, false
	}
	whole := map[string]bool{}
	fields := map[string]map[string]bool{}
	matched := false
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matchesNode(node) {
			continue
		}
		if !r.readSet {
			return nil, false // this rule leaves reads unrestricted
		}
		matched = true
		for t := range r.readTables {
			whole[t] = true
		}
		for t, fs := range r.readFields {
			if fields[t] == nil {
				fields[t] = map[string]bool{}
			}
			for f := range fs {
				fields[t][f] = true
			}
		}
	}
	if !matched {
		return nil, false
	}
	out := map[string][]string{}
	for t := range whole {
		if !replication.IsSystemTable(t) {
			out[t] = nil
		}
	}
	for t, fs := range fields {
		if whole[t] || replication.IsSystemTable(t) {
			continue
		}
		list := make([]string, 0, len(fs))
		for f := range fs {
			list = append(list, f)
		}
		sort.Strings(list)
		out[t] = list
	}
	return out, true
}

func (r *rule) matchesNode(n hlc.NodeID) bool {
	for _, m := range r.nodes {
		if m.Matches(n) {
			return true
		}
	}
	return false
}

// HasReadRules reports whether any rule restricts reads.
func (p *Rules) HasReadRules() bool {
	if p == nil {
		return false
	}
	for _, r := range p.rules {
		if r.readSet {
			return true
		}
	}
	return false
}

// errorsInterval is how often a restricted device re-lists its sync
// errors with a hub.
const errorsInterval = int64(10 * time.Minute / time.Millisecond)

// ReadLimit returns node's read limit as a replication scope (the tables
// it may read, each whole or projected to its fields, and its own sync
// errors), or false when its reads are not restricted.
func (p *Rules) ReadLimit(node hlc.NodeID) (replication.Scope, bool) {
	tables, ok := p.Readable(node)
	if !ok {
		return replication.Scope{}, false
	}
	return LimitScope(node, tables), true
}

// LimitScope builds the limit scope of readable tables for node (nil:
// only the system tables, its own sync errors among them).
func LimitScope(node hlc.NodeID, tables map[string][]string) replication.Scope {
	sc := replication.Scope{}
	for t, fs := range tables {
		ts := replication.TableScope{Table: t}
		if fs != nil {
			ts.Projected, ts.Fields = true, append([]string{}, fs...)
		}
		sc.Tables = append(sc.Tables, ts)
	}
	sc.Tables = append(sc.Tables, ownErrors(node))
	sort.Slice(sc.Tables, func(i, j int) bool { return sc.Tables[i].Table < sc.Tables[j].Table })
	return sc
}

// ownErrors selects the sync-error records that name node.
func ownErrors(n hlc.NodeID) replication.TableScope {
	return replication.TableScope{Table: node.ErrorTable, Filter: fmt.Sprintf("%q in nodes", n.String()), IntervalMs: errorsInterval}
}
