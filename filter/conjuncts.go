package filter

import (
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// Comparison is a conjunct of an expression (a term of its top-level
// &&) that compares a record field, named as an identifier, with a
// literal or a device attribute (device.NAME): Field Op Value. A record the expression selects satisfies
// each of its comparisons; an index on Field can narrow the records to
// evaluate (the expression itself still decides each).
type Comparison struct {
	Field string
	Op    string // "==", "<", "<=", ">", ">="
	// Value: nil (null), bool, int64, uint64, float64 or string.
	Value any
	// Device, when not "", names the device attribute compared with
	// (device.NAME); Value is then nil, and the attribute's value (a
	// string) is known only when the expression runs: see Resolve.
	Device string
}

// Resolve returns c's value with the device attributes given: Value, or
// the attribute Device names (ok false when it is not set).
func (c Comparison) Resolve(device map[string]string) (v any, ok bool) {
	if c.Device == "" {
		return c.Value, true
	}
	s, ok := device[c.Device]
	return s, ok
}

var flipped = map[string]string{"==": "==", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

var opNames = map[string]string{
	operators.Equals: "==", operators.Less: "<", operators.LessEquals: "<=",
	operators.Greater: ">", operators.GreaterEquals: ">=",
}

// Comparisons returns the expression's comparisons of a field with a
// literal among the terms of its top-level &&, in source order.
func (x *Expr) Comparisons() []Comparison {
	if x.ast == nil {
		return nil
	}
	var out []Comparison
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() == operators.LogicalAnd {
			for _, a := range call.Args() {
				walk(a)
			}
			return
		}
		op, ok := opNames[call.FunctionName()]
		args := call.Args()
		if !ok || len(args) != 2 || call.IsMemberFunction() {
			return
		}
		l, r := args[0], args[1]
		if l.Kind() != celast.IdentKind && r.Kind() == celast.IdentKind {
			l, r, op = r, l, flipped[op]
		}
		if l.Kind() != celast.IdentKind || reserved[l.AsIdent()] {
			return
		}
		if attr, ok := deviceAttr(r); ok {
			out = append(out, Comparison{Field: l.AsIdent(), Op: op, Device: attr})
			return
		}
		if r.Kind() != celast.LiteralKind {
			return
		}
		var v any
		switch lit := r.AsLiteral().(type) {
		case types.String:
			v = string(lit)
		case types.Int:
			v = int64(lit)
		case types.Uint:
			v = uint64(lit)
		case types.Double:
			v = float64(lit)
		case types.Bool:
			v = bool(lit)
		case types.Null:
			v = nil
		default:
			return
		}
		out = append(out, Comparison{Field: l.AsIdent(), Op: op, Value: v})
	}
	walk(x.ast.NativeRep().Expr())
	return out
}

// deviceAttr reports whether e is device.NAME, and NAME.
func deviceAttr(e celast.Expr) (string, bool) {
	if e.Kind() != celast.SelectKind {
		return "", false
	}
	sel := e.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != celast.IdentKind || sel.Operand().AsIdent() != "device" {
		return "", false
	}
	return sel.FieldName(), true
}
