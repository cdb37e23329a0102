package filter

import (
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// Comparison is a conjunct of an expression (a term of its top-level
// &&) that compares a record field, named as an identifier, with a
// literal: Field Op Value. A record the expression selects satisfies
// each of its comparisons; an index on Field can narrow the records to
// evaluate (the expression itself still decides each).
type Comparison struct {
	Field string
	Op    string // "==", "<", "<=", ">", ">="
	// Value: nil (null), bool, int64, uint64, float64 or string.
	Value any
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
		if l.Kind() == celast.LiteralKind && r.Kind() == celast.IdentKind {
			l, r, op = r, l, flipped[op]
		}
		if l.Kind() != celast.IdentKind || r.Kind() != celast.LiteralKind || reserved[l.AsIdent()] {
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
