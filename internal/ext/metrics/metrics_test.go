package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/replicad/replicad/replication"
)

// TestMetricsLint: the agent's metrics follow Prometheus's conventions as
// promtool checks them (counters end in _total, units in base units,
// help on every metric), and API requests are labelled by route pattern,
// never by raw path.
func TestMetricsLint(t *testing.T) {
	m := New(nil, Build{Version: "devel", GoVersion: "go1"})
	m.Session(replication.SessionInfo{Duration: 30 * time.Millisecond, Stats: replication.Stats{BytesReceived: 10}})
	m.Session(replication.SessionInfo{Dialed: true, Err: &replication.RefusedError{Reason: "busy"}})
	m.Session(replication.SessionInfo{Err: errors.New("cut")})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tables/{table}/records/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	h := m.Instrument(func(r *http.Request) string { _, p := mux.Handler(r); return p }, mux)
	for _, path := range []string{"/v1/tables/jobs/records/j1", "/v1/tables/crews/records/c9", "/nowhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`replicad_http_requests_total{code="404",route="GET /v1/tables/{table}/records/{id}"} 2`,
		`replicad_http_requests_total{code="404",route="unmatched"} 1`,
		`replicad_sync_sessions_total{direction="served",result="ok"} 1`,
		`replicad_sync_sessions_total{direction="dialed",result="refused"} 1`,
		`replicad_sync_sessions_total{direction="served",result="failed"} 1`,
		`replicad_sync_session_duration_seconds_count{direction="served"} 2`,
		`replicad_sync_bytes_received_total 10`,
		`replicad_build_info{goversion="go`,
	} {
		if !strings.Contains(exposition(t, m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func exposition(t *testing.T, m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
