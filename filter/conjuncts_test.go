package filter

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// TestComparisons: the field-literal and field-device.NAME comparisons
// among the terms of the top-level &&, literal on either side; nothing under || or !, nothing
// on reserved names or computed values.
func TestComparisons(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []Comparison
	}{
		{"owner == 'a'", []Comparison{{Field: "owner", Op: "==", Value: "a"}}},
		{"3 < prio && status == null && done == true", []Comparison{{Field: "prio", Op: ">", Value: int64(3)}, {Field: "status", Op: "==", Value: nil}, {Field: "done", Op: "==", Value: true}}},
		{"a >= 2.5 && (b <= 7u && c > 'x')", []Comparison{{Field: "a", Op: ">=", Value: 2.5}, {Field: "b", Op: "<=", Value: uint64(7)}, {Field: "c", Op: ">", Value: "x"}}},
		{"a == 1 || b == 2", nil},
		{"!(a == 1)", nil},
		{"id == 'x' && now > timestamp('2026-01-01T00:00:00Z')", nil},
		{"a == b && c + 1 == 2 && d == [1]", nil},
		{"device.user == owner && start >= device.since && device['x'] == y", []Comparison{{Field: "owner", Op: "==", Device: "user"}, {Field: "start", Op: ">=", Device: "since"}}},
		{"device.user == device.team", nil},
	} {
		x, err := Compile(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := x.Comparisons(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.expr, got, c.want)
		}
	}
}

// TestCached: one compiled expression per source, shared; bad ones are
// not kept; the cache stays bounded.
func TestCached(t *testing.T) {
	a, err := Cached("x == 1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := Cached("x == 1"); b != a {
		t.Error("the same source compiled twice")
	}
	before := CachedCount()
	var fe *Error
	if _, err := Cached("x =="); !errors.As(err, &fe) || fe.Offset != 4 {
		t.Errorf("bad expression: %v, want an *Error at offset 4", err)
	}
	if CachedCount() != before {
		t.Error("a bad expression was cached")
	}
	for i := 0; i < MaxCached+10; i++ {
		if _, err := Cached(fmt.Sprintf("x == %d", i+100)); err != nil {
			t.Fatal(err)
		}
	}
	if n := CachedCount(); n > MaxCached {
		t.Errorf("%d cached, want at most %d", n, MaxCached)
	}
}

// TestErrorOffset: the offset is in bytes, the column in characters.
func TestErrorOffset(t *testing.T) {
	_, err := Compile("name == 'é' &&\n  (x ==")
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("%v, want an *Error", err)
	}
	if fe.Line != 2 || fe.Offset != len("name == 'é' &&\n  (x ==") {
		t.Errorf("line %d column %d offset %d (%s)", fe.Line, fe.Column, fe.Offset, fe.Msg)
	}
}
