package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDeclsFile: index blocks in table blocks, view blocks and --index
// are read into Config.Indexes and Config.Views; a flag replaces the
// file's index of its name.
func TestDeclsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte(`role = "hub"
table "bookings" {
  keys = ["ref"]
  index "owner_start" { fields = ["owner", "start"] }
  index "by_status" { fields = ["status"] }
}
view "my_open_bookings" {
  table = "bookings"
  where = "owner == device.user && status != 'completed'"
  order = ["start"]
}
view "everything" { table = "jobs" }
`), 0o644)
	c, err := ParseArgs([]string{"--config", path, "--index", "jobs=owner,prio", "--index", "bookings=status"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Indexes {
		c.Indexes[i].Pos = ""
	}
	wantIx := []IndexConfig{
		{Name: "owner_start", Table: "bookings", Fields: []string{"owner", "start"}},
		{Name: "by_status", Table: "bookings", Fields: []string{"status"}},
		{Name: "owner_prio", Table: "jobs", Fields: []string{"owner", "prio"}},
		{Name: "status", Table: "bookings", Fields: []string{"status"}},
	}
	if !reflect.DeepEqual(c.Indexes, wantIx) {
		t.Errorf("indexes:\n got %+v\nwant %+v", c.Indexes, wantIx)
	}
	if len(c.Views) != 2 || c.Views[0].Name != "my_open_bookings" || c.Views[0].Table != "bookings" ||
		c.Views[0].Where != "owner == device.user && status != 'completed'" || !reflect.DeepEqual(c.Views[0].Order, []string{"start"}) ||
		c.Views[1].Name != "everything" || c.Views[1].Where != "" || c.Views[1].Order != nil || c.Views[0].Pos != path+":8:11" {
		t.Errorf("views: %+v", c.Views)
	}
	if !reflect.DeepEqual(c.Tables["bookings"].Keys, []string{"ref"}) {
		t.Errorf("the table block's keys: %+v", c.Tables)
	}
	c, err = ParseArgs([]string{"--config", path, "--index", "bookings=owner", "--index", "bookings=owner,start"}, os.Stderr)
	if err != nil || len(c.Indexes) != 3 || c.Indexes[2].Name != "owner_start" || c.Indexes[2].Pos != "" {
		t.Errorf("--index replacing the file's owner_start: %+v %v", c.Indexes, err)
	}
}

// TestDeclsErrors: a bad declaration is a config error naming the
// file's position (or the flag) and what is wrong.
func TestDeclsErrors(t *testing.T) {
	dir := t.TempDir()
	hub := "role = \"hub\"\n"
	for _, tc := range []struct {
		name  string
		src   string
		flags []string
		want  string
	}{
		{"unknown key in an index block", hub + "table \"t\" {\n  index \"i\" { field = [\"a\"] }\n}\n", nil, "c.hcl:3:15: Unsupported argument"},
		{"index without a name", hub + "table \"t\" {\n  index { fields = [\"a\"] }\n}\n", nil, "c.hcl:3:9: Missing name for index"},
		{"fields not a list", hub + "table \"t\" {\n  index \"i\" { fields = 3 }\n}\n", nil, "c.hcl:3:24: Unsuitable value type"},
		{"no fields", hub + "table \"t\" {\n  index \"i\" { fields = [] }\n}\n", nil, "c.hcl:3:24: table t: index \"i\": fields: 0 given, want 1 to 8"},
		{"a field twice", hub + "table \"t\" {\n  index \"i\" { fields = [\"a\", \"a\"] }\n}\n", nil, "c.hcl:3:24: table t: index \"i\": fields: \"a\" listed twice"},
		{"an empty field", hub + "table \"t\" {\n  index \"i\" { fields = [\"\"] }\n}\n", nil, "fields: \"\" is not a field name"},
		{"a reserved field", hub + "table \"t\" {\n  index \"i\" { fields = [\"id\"] }\n}\n", nil, "fields: \"id\" is not a record field"},
		{"duplicate index name", hub + "table \"t\" {\n  index \"i\" { fields = [\"a\"] }\n}\ntable \"u\" {\n  index \"i\" { fields = [\"b\"] }\n}\n", nil,
			"c.hcl:6:24: table u: index \"i\": an index of that name is declared on table t already"},
		{"bad index name", hub + "table \"t\" {\n  index \"a b\" { fields = [\"a\"] }\n}\n", nil, "index \"a b\": name"},
		{"index on a system table", hub + "table \"_replicad_x\" {\n  index \"i\" { fields = [\"a\"] }\n}\n", nil, "not a system table"},
		{"index on a device", "table \"t\" {\n  index \"i\" { fields = [\"a\"] }\n}\n", nil, "role: only a hub declares indexes and views"},
		{"bad --index", hub, []string{"--index", "t"}, "--index \"t\": want TABLE=FIELD[,FIELD...]"},
		{"--index field twice", hub, []string{"--index", "t=a,a"}, "--index: table t: index \"a_a\": fields: \"a\" listed twice"},
		{"--index on a device", "", []string{"--index", "t=a"}, "--role: only a hub"},
		{"a hub's file run with --role device", hub + "table \"t\" {\n  index \"i\" { fields = [\"a\"] }\n}\n", []string{"--role", "device"}, "--role: only a hub declares"},
		{"bad view where", hub + "view \"v\" {\n  table = \"t\"\n  where = \"owner == && x\"\n}\n", nil, "c.hcl:4:21: view \"v\": where: Syntax error"},
		{"unknown function in where", hub + "view \"v\" {\n  table = \"t\"\n  where = \"a == 1 && nope(b)\"\n}\n", nil, "c.hcl:4:26: view \"v\": where: undeclared reference to 'nope'"},
		{"bad view order", hub + "view \"v\" {\n  table = \"t\"\n  order = [\"a\", \"\"]\n}\n", nil, "c.hcl:4:17: view \"v\": order: empty field name"},
		{"order twice", hub + "view \"v\" {\n  table = \"t\"\n  order = [\"a\", \"-a\"]\n}\n", nil, "c.hcl:4:17: view \"v\": order: field \"a\" listed twice"},
		{"view without table", hub + "view \"v\" {\n  where = \"a == 1\"\n}\n", nil, "c.hcl:2:10: view \"v\": no table"},
		{"view on a system table", hub + "view \"v\" {\n  table = \"_replicad_policy\"\n}\n", nil, "c.hcl:3:11: view \"v\": table _replicad_policy is a system table"},
		{"view twice", hub + "view \"v\" {\n  table = \"t\"\n}\nview \"v\" {\n  table = \"u\"\n}\n", nil, "c.hcl:6:11: view \"v\": declared twice"},
		{"unknown key in a view", hub + "view \"v\" {\n  table = \"t\"\n  sort = [\"a\"]\n}\n", nil, "c.hcl:4:3: Unsupported argument"},
	} {
		path := filepath.Join(dir, "c.hcl")
		os.WriteFile(path, []byte(tc.src), 0o644)
		_, err := ParseArgs(append([]string{"--config", path}, tc.flags...), os.Stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A file without a role declares indexes and views for a hub started
	// with --role hub: the file is judged with the flags applied.
	path := filepath.Join(dir, "c.hcl")
	os.WriteFile(path, []byte("table \"t\" {\n  index \"i\" { fields = [\"a\"] }\n}\nview \"v\" {\n  table = \"t\"\n}\n"), 0o644)
	if c, err := ParseArgs([]string{"--config", path, "--role", "hub"}, os.Stderr); err != nil || len(c.Indexes) != 1 || len(c.Views) != 1 {
		t.Errorf("declarations with --role hub: %v, %+v %+v", err, c.Indexes, c.Views)
	}
}
