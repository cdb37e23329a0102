package onlineread

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// gateHost is a Host whose hub API is base, node 7, online.
type gateHost struct{ base string }

func (h gateHost) With(fn func(Replica) (any, error)) (any, error) {
	return fn(Replica{Node: 7, Online: true, HubAPI: h.base})
}
func (gateHost) RecordNames(*http.Request) (string, string, error) { return "", "", nil }
func (gateHost) PageLimit(*http.Request) (int, error)              { return 100, nil }

func TestForwardQuery(t *testing.T) {
	var got *http.Request
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.URL.Query().Get("where") == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"where: at offset 0: bad"}`))
			return
		}
		w.Write([]byte(`{"count":3}`))
	}))
	defer hub.Close()
	a := New(gateHost{base: hub.URL}, Config{})
	r := httptest.NewRequest(http.MethodGet, "/v1/tables/jobs/records?online=true&where=prio+%3E+1&count=true", nil)
	out, err := a.Forward(nil, r, func() (any, error) { t.Fatal("served locally on a device"); return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/v1/tables/jobs/records" || got.URL.Query().Get("where") != "prio > 1" ||
		got.URL.Query().Get("count") != "true" || got.URL.Query().Has("online") || got.Header.Get(NodeHeader) == "" {
		t.Fatalf("the hub was asked %s (node %q)", got.URL, got.Header.Get(NodeHeader))
	}
	b, _ := json.Marshal(out)
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["count"] != float64(3) || m["online"] != true {
		t.Fatalf("answer: %s", b)
	}
	// The hub's 400 is passed through.
	r = httptest.NewRequest(http.MethodGet, "/v1/tables/jobs/records?online=true&where=bad", nil)
	_, err = a.Forward(nil, r, nil)
	var se interface{ Status() int }
	if err == nil || !asStatus(err, &se) || se.Status() != 400 {
		t.Fatalf("hub's 400: %v", err)
	}
	// On the hub: answered locally.
	a = New(gateHost{}, Config{Hub: true})
	out, err = a.Forward(nil, r, func() (any, error) { return "local", nil })
	if err != nil || out != "local" {
		t.Fatalf("on the hub: %v %v", out, err)
	}
}

func asStatus(err error, se *interface{ Status() int }) bool {
	e, ok := err.(interface{ Status() int })
	*se = e
	return ok
}
