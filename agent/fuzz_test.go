package agent

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// FuzzAPIBodies sends arbitrary bodies to every API endpoint that reads
// one: the answer is a 2xx or a 4xx (a client error), never a 5xx or a
// panic.
func FuzzAPIBodies(f *testing.F) {
	cfg := DefaultConfig()
	cfg.DataDir = f.TempDir()
	cfg.APIAddr, cfg.SyncAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "off"
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(a.closeAll)
	h := a.http.Handler
	put := func(body string) {
		req := httptest.NewRequest("PUT", "/v1/tables/jobs/records/j1", bytes.NewReader([]byte(body)))
		req.Host = a.APIAddr()
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	put(`{"fields":{"title":"x","n":1}}`)
	endpoints := []struct{ method, path string }{
		{"PUT", "/v1/tables/jobs/records/j1"},
		{"PUT", "/v1/tables/jobs/records/j2?draft=true"},
		{"POST", "/v1/conflicts/jobs/j1/title"},
		{"POST", "/v1/connectivity"},
		{"POST", "/v1/sync-errors/1/retry"},
		{"POST", "/v1/gossip/keys"},
		{"POST", "/v1/parked/0000000000000001/1/release"},
	}
	for i := range endpoints {
		for _, b := range []string{`{"fields":{"a":1}}`, `{"pick":0}`, `{"value":"v"}`, `{"online":true}`, `{"op":"install","key":"AAAA"}`, `{}`, `[]`, `{"fields":{"a":{"b":[1,2,{"c":null}]}}}`, `{"fields":{"":1}}`, "\x00"} {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.Host = a.APIAddr()
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("%s %s with %q: status %d: %s", ep.method, ep.path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && !bytes.Contains(rec.Body.Bytes(), []byte(`"error"`)) {
			t.Fatalf("%s %s: %d without a JSON error: %s", ep.method, ep.path, rec.Code, rec.Body.String())
		}
	})
}
