package query

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestBadInput: each refused query names the parameter, the offset of
// the problem in it and a message without Go types.
func TestBadInput(t *testing.T) {
	other, err := Prepare(Query{Table: "t", Where: "a == 1"})
	if err != nil {
		t.Fatal(err)
	}
	otherCursor := encodeCursor(other.ident, &position{id: "x"})
	for _, c := range []struct {
		name   string
		q      Query
		param  string
		offset int
		msg    string
	}{
		{"malformed where", Query{Table: "t", Where: "status == 'a' && (owner =="}, "where", 26, "Syntax error"},
		{"where on line 2", Query{Table: "t", Where: "a == 1 &&\n  b >"}, "where", 15, "line 2"},
		{"where not a bool", Query{Table: "t", Where: "prio + 1"}, "where", 0, "want a bool"},
		{"where wrong type", Query{Table: "t", Where: "device.user == 3"}, "where", 12, "no matching overload"},
		{"negative limit", Query{Table: "t", Limit: -1}, "limit", 0, "negative"},
		{"huge limit", Query{Table: "t", Limit: MaxLimit + 1}, "limit", 0, "more than"},
		{"empty order field", Query{Table: "t", Order: []string{"a", ""}}, "order", 2, "empty field"},
		{"bare minus", Query{Table: "t", Order: []string{"-"}}, "order", 0, "empty field"},
		{"order twice", Query{Table: "t", Order: []string{"a", "-a"}}, "order", 2, "twice"},
		{"order reserved", Query{Table: "t", Order: []string{"prio", "now"}}, "order", 5, "not a field"},
		{"id not last", Query{Table: "t", Order: []string{"id", "a"}}, "order", 0, "last"},
		{"cursor of another query", Query{Table: "t", Where: "a == 2", Cursor: otherCursor}, "cursor", 0, "another query"},
		{"cursor garbage", Query{Table: "t", Cursor: "%%%"}, "cursor", 0, "not a cursor"},
		{"projection reserved", Query{Table: "t", Fields: []string{"a", "device"}}, "fields", 2, "not a field"},
		{"no table", Query{}, "table", 0, "no table"},
	} {
		_, err := Prepare(c.q)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("%s: %v, want an *Error", c.name, err)
			continue
		}
		if qe.Param != c.param || qe.Offset != c.offset || !strings.Contains(qe.Msg, c.msg) {
			t.Errorf("%s: %q at %d: %s; want %q at %d containing %q", c.name, qe.Param, qe.Offset, qe.Msg, c.param, c.offset, c.msg)
		}
		if strings.Contains(qe.Msg, "*") || strings.Contains(qe.Msg, "types.") {
			t.Errorf("%s: message shows Go types: %s", c.name, qe.Msg)
		}
	}
	// Options from URL parameters.
	for _, c := range []struct {
		params string
		param  string
		msg    string
	}{
		{"where=a==1&sort=a", "sort", "unknown option"},
		{"limit=ten", "limit", "whole number"},
		{"count=maybe", "count", "true or false"},
		{"limit=1&limit=2", "limit", "2 times"},
	} {
		v, _ := url.ParseQuery(c.params)
		_, err := FromParams("t", v)
		var qe *Error
		if !errors.As(err, &qe) || qe.Param != c.param || !strings.Contains(qe.Msg, c.msg) {
			t.Errorf("FromParams(%s) = %v, want %s: %s", c.params, err, c.param, c.msg)
		}
	}
	v, _ := url.ParseQuery("where=prio>=2&order=-prio,id&limit=5&fields=a,b&count=false&explain=true")
	q, err := FromParams("t", v)
	if err != nil || q.Where != "prio>=2" || len(q.Order) != 2 || q.Limit != 5 || len(q.Fields) != 2 || !q.Explain {
		t.Errorf("FromParams: %+v, %v", q, err)
	}
}

// FuzzCursor: a cursor of any bytes is refused or decoded into a
// position of well-formed values; it never panics.
func FuzzCursor(f *testing.F) {
	p, err := Prepare(Query{Table: "t", Order: []string{"a", "-b"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodeCursor(p.ident, &position{keys: [][]byte{{0x10}, {0x40, 'x', 0, 1}}, id: "r1"}))
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, c string) {
		if c == "" {
			return // no cursor: the first page
		}
		q := Query{Table: "t", Order: []string{"a", "-b"}, Cursor: c}
		pp, err := Prepare(q)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || qe.Param != "cursor" {
				t.Fatalf("%q: %v", c, err)
			}
			return
		}
		if len(pp.after.keys) != 2 || pp.after.id == "" {
			t.Fatalf("%q: decoded %+v", c, pp.after)
		}
	})
}
