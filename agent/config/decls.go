package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/store"
)

// Index and view declarations: a hub declares secondary indexes
//
//	table "bookings" { index "owner_start" { fields = ["owner", "start"] } }
//
// (or --index bookings=owner,start, named by its fields joined by "_")
// and views
//
//	view "my_open_bookings" {
//	  table = "bookings"
//	  where = "owner == device.user && status != 'completed'"
//	  order = ["start"]
//	}
//
// and distributes them to every replica (system tables _replicad_index
// and _replicad_view), which builds the indexes and lists and runs the
// views.

// IndexConfig is one declared index.
type IndexConfig struct {
	// Name is the index's name, unique among the indexes of the
	// configuration (it names the index in query plans).
	Name   string
	Table  string
	Fields []string
	// Pos is where the file declares it (FILE:LINE:COLUMN, for errors);
	// "" from --index.
	Pos string
}

// ViewConfig is one declared view: a named query.
type ViewConfig struct {
	Name  string
	Table string
	// Where selects the records (the query language's CEL; device.*
	// reads the asking device's attributes); "" selects every record.
	Where string
	// Order lists fields, each with a leading "-" for descending.
	Order []string
	// Pos is where the file declares it (for errors).
	Pos string
}

type indexBlock struct {
	Name   string         `hcl:"name,label"`
	Fields hcl.Expression `hcl:"fields"`
}

type viewBlock struct {
	Name  string         `hcl:"name,label"`
	Table hcl.Expression `hcl:"table"`
	Where hcl.Expression `hcl:"where,optional"`
	Order hcl.Expression `hcl:"order,optional"`
}

// reservedFields are names a where clause reads as something other than
// a record's field: no index or order may use them.
var reservedFields = map[string]bool{"id": true, "now": true, "today": true, "device": true, "record": true}

// present reports whether an optional attribute was given.
func present(e hcl.Expression) bool {
	if e == nil {
		return false
	}
	v, diags := e.Value(nil)
	return diags.HasErrors() || !v.IsNull()
}

// applyDeclsFile reads the index blocks of the table blocks and the view
// blocks of a config file (src) over c, and checks each view's where and
// order there, so that an error names its position in the file.
func applyDeclsFile(src []byte, tables []tableBlock, views []viewBlock, c *Config) error {
	var ixs []IndexConfig
	for _, t := range tables {
		for _, b := range t.Indexes {
			x := IndexConfig{Name: b.Name, Table: t.Name, Pos: posOf(b.Fields.Range())}
			if diags := gohcl.DecodeExpression(b.Fields, nil, &x.Fields); diags.HasErrors() {
				return diagErr(diags)
			}
			ixs = append(ixs, x)
		}
	}
	if ixs != nil {
		c.Indexes = ixs
	}
	var vs []ViewConfig
	for _, b := range views {
		v := ViewConfig{Name: b.Name, Pos: posOf(b.Table.Range())}
		if !present(b.Table) {
			return fmt.Errorf("config: %s: view %q: no table (table = \"NAME\")", posOf(b.Table.Range()), v.Name)
		}
		if diags := gohcl.DecodeExpression(b.Table, nil, &v.Table); diags.HasErrors() {
			return diagErr(diags)
		}
		if present(b.Where) {
			if diags := gohcl.DecodeExpression(b.Where, nil, &v.Where); diags.HasErrors() {
				return diagErr(diags)
			}
		}
		if present(b.Order) {
			if diags := gohcl.DecodeExpression(b.Order, nil, &v.Order); diags.HasErrors() {
				return diagErr(diags)
			}
		}
		if _, err := query.Prepare(query.Query{Table: v.Table, Where: v.Where, Order: v.Order}); err != nil {
			var qe *query.Error
			if !errors.As(err, &qe) {
				return fmt.Errorf("config: %s: view %q: %v", v.Pos, v.Name, err)
			}
			pos := v.Pos
			switch qe.Param {
			case "where":
				pos = stringPos(src, b.Where.Range(), v.Where, qe.Offset)
			case "order":
				pos = orderPos(b.Order, v.Order, qe.Offset)
			}
			return fmt.Errorf("config: %s: view %q: %s: %s", pos, v.Name, qe.Param, qe.Msg)
		}
		vs = append(vs, v)
	}
	if vs != nil {
		c.Views = vs
	}
	return nil
}

// stringPos is the position of byte offset off of the string value s
// whose expression spans r in src: exact when the source holds s
// verbatim between quotes on one line, else the expression's start.
func stringPos(src []byte, r hcl.Range, s string, off int) string {
	start := r.Start.Byte
	if off < 0 || off > len(s) || start+1+len(s) > len(src) || src[start] != '"' ||
		string(src[start+1:start+1+len(s)]) != s || strings.ContainsAny(s, "\n\\$%") {
		return posOf(r)
	}
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column+1+utf8.RuneCountInString(s[:off]))
}

// orderPos is the position of the element of order at byte offset off of
// its fields joined by ",".
func orderPos(e hcl.Expression, order []string, off int) string {
	t, ok := e.(*hclsyntax.TupleConsExpr)
	if !ok || len(t.Exprs) != len(order) {
		return posOf(e.Range())
	}
	at := 0
	for i, f := range order {
		if off < at+len(f)+1 {
			return posOf(t.Exprs[i].Range())
		}
		at += len(f) + 1
	}
	return posOf(e.Range())
}

// parseIndexFlag parses --index values: TABLE=FIELD[,FIELD...] each, the
// index named by its fields joined by "_".
func parseIndexFlag(vals []string) ([]IndexConfig, error) {
	var out []IndexConfig
	for _, v := range vals {
		t, fs, ok := strings.Cut(v, "=")
		if !ok || t == "" || fs == "" {
			return nil, fmt.Errorf("--index %q: want TABLE=FIELD[,FIELD...]", v)
		}
		fields := strings.Split(fs, ",")
		out = append(out, IndexConfig{Name: strings.Join(fields, "_"), Table: t, Fields: fields})
	}
	return out, nil
}

// declErr is an error of a declaration: at its position in the file, or
// of its key (the flag, for --index).
func declErr(key, pos, format string, args ...any) error {
	if pos == "" {
		return keyErr(key, format, args...)
	}
	return fmt.Errorf("config: %s: %s", pos, fmt.Sprintf(format, args...))
}

// validateDecls checks the declared indexes and views.
func (c *Config) validateDecls() error {
	if len(c.Indexes)+len(c.Views) > 0 && c.Role != "hub" {
		return keyErr("role", "only a hub declares indexes and views, which it distributes to every replica (role is %q)", c.Role)
	}
	names := map[string]string{}
	for _, x := range c.Indexes {
		what := fmt.Sprintf("table %s: index %q", x.Table, x.Name)
		if !store.ValidTable(x.Table) || strings.HasPrefix(x.Table, "_replicad_") {
			return declErr("index", x.Pos, "%s: table name: 1-%d characters from [A-Za-z0-9_.-], not a system table", what, store.MaxTableLen)
		}
		if !store.ValidTable(x.Name) {
			return declErr("index", x.Pos, "%s: name: 1-%d characters from [A-Za-z0-9_.-]", what, store.MaxTableLen)
		}
		if t, dup := names[x.Name]; dup {
			return declErr("index", x.Pos, "%s: an index of that name is declared on table %s already (index names are unique)", what, t)
		}
		names[x.Name] = x.Table
		if len(x.Fields) == 0 || len(x.Fields) > store.MaxIndexFields {
			return declErr("index", x.Pos, "%s: fields: %d given, want 1 to %d", what, len(x.Fields), store.MaxIndexFields)
		}
		seen := map[string]bool{}
		for _, f := range x.Fields {
			switch {
			case f == "" || strings.ContainsAny(f, ",\x00") || len(f) > 1024:
				return declErr("index", x.Pos, "%s: fields: %q is not a field name", what, f)
			case reservedFields[f]:
				return declErr("index", x.Pos, "%s: fields: %q is not a record field (a where clause reads it as something else)", what, f)
			case seen[f]:
				return declErr("index", x.Pos, "%s: fields: %q listed twice", what, f)
			}
			seen[f] = true
		}
	}
	views := map[string]bool{}
	for _, v := range c.Views {
		what := fmt.Sprintf("view %q", v.Name)
		if !store.ValidTable(v.Name) {
			return declErr("view", v.Pos, "%s: name: 1-%d characters from [A-Za-z0-9_.-]", what, store.MaxTableLen)
		}
		if views[v.Name] {
			return declErr("view", v.Pos, "%s: declared twice", what)
		}
		views[v.Name] = true
		switch {
		case v.Table == "":
			return declErr("view", v.Pos, "%s: no table", what)
		case strings.HasPrefix(v.Table, "_replicad_"):
			return declErr("view", v.Pos, "%s: table %s is a system table", what, v.Table)
		case !store.ValidTable(v.Table):
			return declErr("view", v.Pos, "%s: table %q: 1-%d characters from [A-Za-z0-9_.-]", what, v.Table, store.MaxTableLen)
		}
		if _, err := query.Prepare(query.Query{Table: v.Table, Where: v.Where, Order: v.Order}); err != nil {
			return declErr("view", v.Pos, "%s: %v", what, err)
		}
	}
	return nil
}
