package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func guardAgent(t *testing.T) (*Agent, *syncBuf) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.APIAddr, cfg.SyncAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "off"
	logs := &syncBuf{}
	a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.closeAll)
	return a, logs
}

func serve(a *Agent, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = a.APIAddr()
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	a.http.Handler.ServeHTTP(rec, req)
	return rec
}

// TestExactJSON: integers beyond 64 bits and invalid UTF-8 are refused
// (400 naming the field), integers up to 64 bits are kept exact.
func TestExactJSON(t *testing.T) {
	a, _ := guardAgent(t)
	for _, c := range []struct {
		body, want string
	}{
		{`{"fields":{"big":123456789012345678901234567890}}`, `field \"big\": integer 123456789012345678901234567890 is beyond 64 bits`},
		{`{"fields":{"n":{"deep":[1,18446744073709551616]}}}`, `field \"n\": integer 18446744073709551616 is beyond 64 bits`},
		{`{"fields":{"neg":-9223372036854775809}}`, `field \"neg\": integer -9223372036854775809`},
		{"{\"fields\":{\"s\":\"caf\xe9\"}}", `field \"s\": the value is not valid UTF-8`},
		{"{\"fields\":{\"n\xff\":1}}", `a field name is not valid UTF-8 (at byte 13`},
	} {
		rec := serve(a, "PUT", "/v1/tables/jobs/records/j1", c.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%q: %d %s, want 400 with %s", c.body, rec.Code, rec.Body.String(), c.want)
		}
	}
	if rec := serve(a, "GET", "/v1/tables/jobs/records/j1", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("after refused writes: %d %s", rec.Code, rec.Body.String())
	}
	body := `{"fields":{"u":18446744073709551615,"i":-9223372036854775808,"f":1.5,"s":"café"}}`
	if rec := serve(a, "PUT", "/v1/tables/jobs/records/j1", body); rec.Code != 200 {
		t.Fatalf("64-bit integers: %d %s", rec.Code, rec.Body.String())
	}
	rec := serve(a, "GET", "/v1/tables/jobs/records/j1", "")
	var r struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	json.Unmarshal(rec.Body.Bytes(), &r)
	for f, want := range map[string]string{"u": "18446744073709551615", "i": "-9223372036854775808", "f": "1.5", "s": `"café"`} {
		if got := string(r.Fields[f]); got != want {
			t.Errorf("field %s = %s, want %s", f, got, want)
		}
	}
}

// TestRefusalLogThrottled: a burst of refused requests writes one WARN
// line, not one per request.
func TestRefusalLogThrottled(t *testing.T) {
	a, logs := guardAgent(t)
	for i := 0; i < 200; i++ {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req.Host = "evil.example"
		rec := httptest.NewRecorder()
		a.http.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusMisdirectedRequest {
			t.Fatalf("foreign Host: %d", rec.Code)
		}
	}
	if n := strings.Count(logs.String(), "api request refused"); n != 1 {
		t.Errorf("%d log lines for 200 refused requests, want 1:\n%s", n, logs)
	}
	if suppressed := a.guard.RefusedPending(); suppressed != 199 {
		t.Errorf("suppressed %d, want 199 (reported with the next line)", suppressed)
	}
}
