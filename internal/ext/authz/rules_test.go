package authz

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func TestPermissionRules(t *testing.T) {
	perms, err := Compile([]config.Permission{
		{Name: "tech", Nodes: []string{"a1b2c3d400000000/32"}, Write: []string{"jobs:status", "notes"}},
		{Name: "lead", Nodes: []string{"00000000000000ff"}, Write: []string{"jobs"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tech, lead, free := hlc.NodeID(0xa1b2c3d4deadbeef), hlc.NodeID(0xff), hlc.NodeID(0x1234)
	w := func(o hlc.NodeID, table string, del bool, fields ...string) *crdt.Write {
		cw := &crdt.Write{Origin: o, Seq: 1, Table: table, ID: "x", Delete: del}
		for _, f := range fields {
			cw.Fields = append(cw.Fields, crdt.FieldValue{Name: f, Value: crdt.Cleared})
		}
		return cw
	}
	for _, c := range []struct {
		w    *crdt.Write
		deny string
	}{
		{w(tech, "jobs", false, "status"), ""},
		{w(tech, "jobs", false, "status", "title"), "field(s) title"},
		{w(tech, "jobs", true), "may not delete"},
		{w(tech, "notes", true), ""},
		{w(tech, "payroll", false, "a"), "may not write table payroll"},
		{w(lead, "jobs", true), ""},
		{w(lead, "notes", false, "a"), "may not write table notes"},
		{w(free, "payroll", true), ""},
	} {
		got := perms.Check(c.w)
		if c.deny == "" && got != "" || c.deny != "" && !strings.Contains(got, c.deny) {
			t.Errorf("%v %s del=%v %v: %q, want %q", c.w.Origin, c.w.Table, c.w.Delete, c.w.Fields, got, c.deny)
		}
	}
	for _, bad := range [][]config.Permission{
		{{Name: "x", Write: []string{"jobs"}}},
		{{Name: "x", Nodes: []string{"zz"}}},
		{{Name: "x", Nodes: []string{"ff/65"}}},
		{{Name: "x", Nodes: []string{"ff"}, Write: []string{"jobs:"}}},
		{{Name: "x", Nodes: []string{"ff"}, Write: []string{"bad table!"}}},
	} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	// From the config file.
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("permission \"tech\" {\n  nodes = [\"a1b2c3d400000000/32\"]\n  write = [\"jobs:status\"]\n}\n"), 0o644)
	c := config.DefaultConfig()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if len(c.Security.Permissions) != 1 || c.Security.Permissions[0].Name != "tech" {
		t.Fatalf("permissions from the file: %+v", c.Security.Permissions)
	}
}

func TestReadable(t *testing.T) {
	const a, b = hlc.NodeID(0xa1b2c3d400000001), hlc.NodeID(0xb000000000000001)
	for _, c := range []struct {
		name  string
		rules []config.Permission
		node  hlc.NodeID
		want  map[string][]string // nil: unrestricted
		limit string
	}{
		{name: "no rules", node: a},
		{name: "no rule matches", rules: []config.Permission{{Name: "r", Nodes: []string{"b000000000000000/4"}, Read: []string{"jobs"}}}, node: a},
		{name: "no read key", rules: []config.Permission{{Name: "w", Nodes: []string{"a1b2c3d400000000/32"}, Write: []string{"jobs"}}}, node: a},
		{name: "fields", rules: []config.Permission{{Name: "r", Nodes: []string{"a1b2c3d400000000/32"}, Read: []string{"jobs:status", "jobs:notes", "customers"}}}, node: a,
			want: map[string][]string{"jobs": {"notes", "status"}, "customers": nil}, limit: `_replicad_errors{"a1b2c3d400000001" in nodes},customers,jobs(notes status)`},
		{name: "union of rules", rules: []config.Permission{
			{Name: "r1", Nodes: []string{"a1b2c3d400000000/32"}, Read: []string{"jobs:status"}, ReadSet: true},
			{Name: "r2", Nodes: []string{a.String()}, Read: []string{"jobs:notes", "parts"}},
			{Name: "r3", Nodes: []string{"a100000000000000/8"}, Read: []string{"parts:sku"}},
		}, node: a, want: map[string][]string{"jobs": {"notes", "status"}, "parts": nil}},
		{name: "whole table wins over fields", rules: []config.Permission{
			{Name: "r1", Nodes: []string{"a1b2c3d400000000/32"}, Read: []string{"jobs:status"}, ReadSet: true},
			{Name: "r2", Nodes: []string{"a1b2c3d400000000/32"}, Read: []string{"jobs"}, ReadSet: true},
		}, node: a, want: map[string][]string{"jobs": nil}},
		{name: "a matching rule without read lifts the restriction", rules: []config.Permission{
			{Name: "r1", Nodes: []string{"a1b2c3d400000000/32"}, Read: []string{"jobs:status"}, ReadSet: true},
			{Name: "w", Nodes: []string{"a1b2c3d400000000/32"}, Write: []string{"jobs"}},
		}, node: a},
		{name: "read = [] reads only the system tables", rules: []config.Permission{{Name: "r", Nodes: []string{a.String()}, ReadSet: true}}, node: a,
			want: map[string][]string{}, limit: `_replicad_errors{"a1b2c3d400000001" in nodes}`},
		{name: "system tables listed are ignored", rules: []config.Permission{{Name: "r", Nodes: []string{a.String()}, Read: []string{"_replicad_policy:x", "jobs"}}}, node: a,
			want: map[string][]string{"jobs": nil}},
		{name: "other node", rules: []config.Permission{{Name: "r", Nodes: []string{a.String()}, Read: []string{"jobs"}}}, node: b},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			got, restricted := p.Readable(c.node)
			if restricted != (c.want != nil) || c.want != nil && !reflect.DeepEqual(got, c.want) {
				t.Fatalf("readable = %v %v, want %v", got, restricted, c.want)
			}
			lim, ok := p.ReadLimit(c.node)
			if ok != restricted {
				t.Fatalf("readLimit ok %v, readable %v", ok, restricted)
			}
			if c.limit != "" && lim.String() != c.limit {
				t.Fatalf("limit %s, want %s", lim, c.limit)
			}
			if ok {
				if err := lim.Validate(); err != nil {
					t.Fatalf("limit invalid: %v", err)
				}
			}
			if p.HasReadRules() != (c.want != nil || c.name == "union of rules" || c.name == "other node" || c.name == "no rule matches" || c.name == "a matching rule without read lifts the restriction") {
				t.Fatalf("hasReadRules %v", p.HasReadRules())
			}
		})
	}
}
