// Package filter compiles and evaluates the record filters of offline
// profiles: expressions in CEL (github.com/google/cel-go, the typed
// expression language Kubernetes uses for its policies) over a record's
// fields, the current time and the device's attributes.
//
// A filter names a record's fields directly (status != 'completed'); a
// field whose name is not an identifier is record["due-date"]. Besides
// them it may read:
//
//	now        the current time (a timestamp)
//	today      midnight (UTC) of the current day (a timestamp)
//	id         the record's id (a string)
//	device     the device's attributes from its assignment (device.user)
//	days(n)    a duration of n days; hours(n) of n hours
//
// A field value that is a date (2026-11-30) or an RFC 3339 time is a
// timestamp in a filter, so "start >= today" and
// "start < today + days(7)" compare times. A field a record lacks is
// null; an expression that fails on a record (a missing field compared
// with a time, a wrong type) does not select it. Expressions are compiled
// once (Compile reports a bad one with its line and column) and must be
// boolean.
//
// The package is pure: the time comes from the caller.
package filter

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/replicad/replicad/crdt"
)

// Reserved names a filter reads besides the record's fields.
var reserved = map[string]bool{"now": true, "today": true, "id": true, "device": true, "record": true}

// Expr is a compiled filter.
type Expr struct {
	src      string
	prg      cel.Program
	fields   []string // record fields named as identifiers
	record   bool     // reads the record map
	usesTime bool
	ast      *cel.Ast // checked
}

var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("now", cel.TimestampType),
		cel.Variable("today", cel.TimestampType),
		cel.Variable("id", cel.StringType),
		cel.Variable("device", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("record", cel.MapType(cel.StringType, cel.DynType)),
		cel.Function("days", cel.Overload("days_int", []*cel.Type{cel.IntType}, cel.DurationType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return duration(v, 24*time.Hour) }))),
		cel.Function("hours", cel.Overload("hours_int", []*cel.Type{cel.IntType}, cel.DurationType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return duration(v, time.Hour) }))),
	)
})

func duration(v ref.Val, unit time.Duration) ref.Val {
	n, ok := v.(types.Int)
	if !ok {
		return types.NewErr("days/hours: want an int")
	}
	const limit = 100 * 365
	if n > limit || n < -limit {
		return types.NewErr("days/hours: %d is out of range", int64(n))
	}
	return types.Duration{Duration: time.Duration(n) * unit}
}

// Compile compiles src. The error of a bad expression gives the line and
// column of the problem.
func Compile(src string) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Src: src, Line: 1, Column: 1, Msg: "empty expression"}
	}
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	parsed, iss := env.Parse(src)
	if iss != nil && iss.Err() != nil {
		return nil, compileError(src, iss)
	}
	// Every free identifier that is not reserved is a record field.
	names := map[string]bool{}
	celast.PreOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.IdentKind {
			names[e.AsIdent()] = true
		}
	}))
	x := &Expr{src: src}
	var decls []cel.EnvOption
	for n := range names {
		switch {
		case n == "record":
			x.record = true
		case n == "now" || n == "today":
			x.usesTime = true
		case reserved[n]:
		default:
			x.fields = append(x.fields, n)
			decls = append(decls, cel.Variable(n, cel.DynType))
		}
	}
	sort.Strings(x.fields)
	fenv, err := env.Extend(decls...)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", src, err)
	}
	checked, iss := fenv.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, compileError(src, iss)
	}
	if t := checked.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, &Error{Src: src, Line: 1, Column: 1, Msg: fmt.Sprintf("the expression is a %s, want a bool", t)}
	}
	x.ast = checked
	x.prg, err = fenv.Program(checked, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(100000))
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", src, err)
	}
	return x, nil
}

// String returns the source.
func (x *Expr) String() string { return x.src }

// Fields returns the record fields the expression names as identifiers
// (not those it reads through record[...]).
func (x *Expr) Fields() []string { return x.fields }

// ReadsAll reports whether the expression reads the record map (any
// field may matter).
func (x *Expr) ReadsAll() bool { return x.record }

// UsesTime reports whether the expression reads now or today: its result
// can change as time passes.
func (x *Expr) UsesTime() bool { return x.usesTime }

// Env is what a filter reads besides the record.
type Env struct {
	NowMs  int64             // the current time, Unix ms
	Device map[string]string // the device's attributes
}

// Match reports whether record id (its last-writer-wins view) is
// selected. A record the expression fails on is not.
func (x *Expr) Match(id string, rec *crdt.Record, env Env) bool {
	out, _, err := x.prg.Eval(&activation{x: x, id: id, rec: rec, env: env})
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}

// activation resolves a filter's names for one record, lazily (no map
// per evaluation).
type activation struct {
	x   *Expr
	id  string
	rec *crdt.Record
	env Env
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "now":
		return types.Timestamp{Time: time.UnixMilli(a.env.NowMs).UTC()}, true
	case "today":
		return types.Timestamp{Time: time.UnixMilli(a.env.NowMs).UTC().Truncate(24 * time.Hour)}, true
	case "id":
		return types.String(a.id), true
	case "device":
		if a.env.Device == nil {
			return map[string]string{}, true
		}
		return a.env.Device, true
	case "record":
		m := map[string]any{}
		a.rec.Visible(func(name string, _ crdt.Value) { m[name] = fieldValue(a.rec, name) })
		return m, true
	}
	return fieldValue(a.rec, name), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// fieldValue is a field's value as a filter sees it: null when absent,
// dates and RFC 3339 times as timestamps.
func fieldValue(rec *crdt.Record, name string) any {
	v, ok := rec.Get(name)
	if !ok {
		return types.NullValue
	}
	x, err := v.Decode()
	if err != nil {
		return types.NullValue
	}
	return native(x)
}

func native(x any) any {
	switch t := x.(type) {
	case nil:
		return types.NullValue
	case string:
		if ts, ok := parseTime(t); ok {
			return types.Timestamp{Time: ts}
		}
		return types.String(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = native(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = native(e)
		}
		return out
	}
	return x
}

func parseTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	if len(s) == 10 {
		t, err := time.Parse(time.DateOnly, s)
		return t, err == nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
