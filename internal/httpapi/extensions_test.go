package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequests: the extensions' request parsing is the public API's: a
// record route's names are checked, the guard judges writes only, a PUT
// body's fields are converted (present false without "fields").
func TestRequests(t *testing.T) {
	refused := errors.New("refused")
	q := Requests{Guard: func(table string) error {
		if table == "_sys" {
			return refused
		}
		return nil
	}}
	req := func(method, table, id, body string) *http.Request {
		r := httptest.NewRequest(method, "/x", strings.NewReader(body))
		r.SetPathValue("table", table)
		r.SetPathValue("id", id)
		return r
	}
	if _, _, err := q.RecordNames(req(http.MethodGet, "_sys", "a", "")); err != nil {
		t.Errorf("a read of a guarded table: %v", err)
	}
	if _, _, err := q.RecordNames(req(http.MethodPost, "_sys", "a", "")); !errors.Is(err, refused) {
		t.Errorf("a write to a guarded table: %v, want the guard's refusal", err)
	}
	if _, _, err := q.RecordNames(req(http.MethodGet, "bad/name", "a", "")); err == nil {
		t.Error("a bad table name passed")
	}
	f, present, err := q.PutFields(req(http.MethodPut, "t", "a", `{"fields":{"n":1}}`), nil)
	if err != nil || !present || len(f) != 1 || f[0].Name != "n" {
		t.Errorf("fields %v present %v err %v", f, present, err)
	}
	if _, present, err := q.PutFields(req(http.MethodPut, "t", "a", `{}`), nil); err != nil || present {
		t.Errorf("no fields: present %v err %v", present, err)
	}
	tooMany := errors.New("too many")
	if _, _, err := q.PutFields(req(http.MethodPut, "t", "a", `{"fields":{"a":1,"b":2}}`), func(n int) error {
		if n > 1 {
			return tooMany
		}
		return nil
	}); !errors.Is(err, tooMany) {
		t.Errorf("check: %v", err)
	}
	r := httptest.NewRequest(http.MethodGet, "/x?limit=7", nil)
	if n, err := q.PageLimit(r); n != 7 || err != nil {
		t.Errorf("limit %d %v", n, err)
	}
}
