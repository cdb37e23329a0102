package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/replicad/replicad/client"
)

// TestHubSeesItsFleet: a hub and two devices as processes. After the
// devices' syncs the hub's peer table (`replicad peers`, GET /v1/peers,
// and "peers" in its status) lists both, served, with a result, writes
// each way, pending writes, version and clock skew, and still does after
// a restart; its tables have a last sync, it shows no meaningless
// "pending outbound", and /metrics has the session, HTTP and build series.
func TestHubSeesItsFleet(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	d1 := startNode(t, "d1", "--hub", hub.sync)
	d2 := startNode(t, "d2", "--hub", hub.sync)
	ctx := context.Background()
	d1.mustCLI("put", "jobs", "j1", "title=from-d1")
	d1.mustCLI("sync")
	d2.mustCLI("put", "jobs", "j2", "title=from-d2")
	d2.mustCLI("sync") // takes j1 from the hub
	d1.mustCLI("sync") // takes j2
	nodeOf := func(n *node) string {
		st, err := n.client().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Node
	}
	devices := map[string]string{nodeOf(d1): "d1", nodeOf(d2): "d2"}

	checkRows := func(what string, ps []client.Peer, full bool) error {
		seen := map[string]bool{}
		for _, p := range ps {
			name, ok := devices[p.Node]
			if !ok {
				return fmt.Errorf("%s: a row for an unknown node: %+v", what, p)
			}
			switch {
			case p.Direction != "served" || p.Role != "device":
				return fmt.Errorf("%s: %s is %q/%q, want served/device", what, name, p.Direction, p.Role)
			case p.Result != "ok" || p.LastSessionAt == "" || p.LastSuccess == "" || p.Sessions < 1:
				return fmt.Errorf("%s: %s has no successful session: %+v", what, name, p)
			case p.WritesIn < 1 || p.WritesOut < 1:
				return fmt.Errorf("%s: %s: writes received %d, sent %d; want at least 1 each way", what, name, p.WritesIn, p.WritesOut)
			case p.Addr == "" || p.Version == "" || p.FirstSeen == "":
				return fmt.Errorf("%s: %s lacks address, version or first seen: %+v", what, name, p)
			}
			if full && (p.Pending == nil || *p.Pending != 0 || p.SyncErrors == nil || *p.SyncErrors != 0) {
				return fmt.Errorf("%s: %s: pending %v, sync errors %v; want 0 and 0 (it holds everything)", what, name, p.Pending, p.SyncErrors)
			}
			seen[name] = true
		}
		if len(ps) != 2 || !seen["d1"] || !seen["d2"] {
			return fmt.Errorf("%s: rows for %v (%d rows), want d1 and d2", what, seen, len(ps))
		}
		return nil
	}
	cliPeers := func() []client.Peer {
		var out struct {
			Peers []client.Peer `json:"peers"`
		}
		if err := json.Unmarshal([]byte(hub.mustCLI("peers")), &out); err != nil {
			t.Fatal(err)
		}
		return out.Peers
	}
	eventually(t, "the hub's `replicad peers` lists both devices", func() error { return checkRows("replicad peers", cliPeers(), true) })
	ps, err := hub.client().Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRows("GET /v1/peers", ps, true); err != nil {
		t.Error(err)
	}
	st, err := hub.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRows("status peers", st.Peers, false); err != nil {
		t.Error(err)
	}
	for _, tb := range st.Tables {
		if tb.Table == "jobs" && tb.LastSync == "" {
			t.Errorf("the hub's table jobs: last sync never, after its devices synced it")
		}
	}
	var raw map[string]json.RawMessage
	if err := hub.getJSON("/v1/status", &raw); err != nil {
		t.Fatal(err)
	}
	if v, ok := raw["pending_outbound"]; ok {
		t.Errorf("a hub with no other hub shows pending_outbound %s", v)
	}
	if !strings.Contains(hub.log.String(), "sync session") || !strings.Contains(hub.log.String(), "direction=served") {
		t.Errorf("the hub logged no session summary at INFO")
	}

	// Metrics: parse the exposition text.
	fams := hub.metrics()
	served := sumCounter(fams["replicad_sync_sessions_total"], map[string]string{"direction": "served", "result": "ok"})
	if served < 3 {
		t.Errorf("replicad_sync_sessions_total{direction=served,result=ok} = %v, want >= 3", served)
	}
	var histCount uint64
	if f := fams["replicad_sync_session_duration_seconds"]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
		for _, m := range f.Metric {
			if labelsOf(m)["direction"] == "served" {
				histCount += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if histCount < 3 {
		t.Errorf("replicad_sync_session_duration_seconds{direction=served}: %d samples, want >= 3", histCount)
	}
	if n := sumCounter(fams["replicad_http_requests_total"], map[string]string{"route": "GET /v1/status", "code": "200"}); n < 1 {
		t.Errorf(`replicad_http_requests_total{route="GET /v1/status",code="200"} = %v, want >= 1`, n)
	}
	for _, m := range fams["replicad_http_requests_total"].GetMetric() {
		if r := labelsOf(m)["route"]; strings.Contains(r, "jobs") || strings.Contains(r, "j1") {
			t.Errorf("route label %q is a raw path, want a route template", r)
		}
	}
	if f := fams["replicad_http_request_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("no replicad_http_request_duration_seconds histogram")
	}
	if f := fams["replicad_build_info"]; f == nil || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 1 || labelsOf(f.Metric[0])["version"] == "" {
		t.Errorf("replicad_build_info: %v", f)
	}
	if n := sumGauge(fams["replicad_peers"], map[string]string{"direction": "served"}); n != 2 {
		t.Errorf("replicad_peers{direction=served} = %v, want 2", n)
	}
	if f := fams["replicad_pending_outbound_writes"]; f != nil {
		t.Errorf("a hub with no other hub exports replicad_pending_outbound_writes")
	}

	// The hub remembers its fleet across a restart.
	before := cliPeers()
	hub.stop()
	hub.start()
	after := cliPeers()
	if err := checkRows("after a restart", after, true); err != nil {
		t.Error(err)
	}
	for i := range before {
		if i < len(after) && (before[i].Node != after[i].Node || before[i].WritesIn != after[i].WritesIn || before[i].LastSessionAt != after[i].LastSessionAt) {
			t.Errorf("after a restart: %+v, before %+v", after[i], before[i])
		}
	}
	if st, err := hub.client().Status(ctx); err == nil {
		for _, tb := range st.Tables {
			if tb.Table == "jobs" && tb.LastSync == "" {
				t.Errorf("after a restart, the hub's table jobs: last sync never")
			}
		}
	}
}

func (n *node) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + n.api + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics parses the node's /metrics.
func (n *node) metrics() map[string]*dto.MetricFamily {
	n.t.Helper()
	resp, err := http.Get("http://" + n.api + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		n.t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func matches(m *dto.Metric, want map[string]string) bool {
	ls := labelsOf(m)
	for k, v := range want {
		if ls[k] != v {
			return false
		}
	}
	return true
}

func sumCounter(f *dto.MetricFamily, want map[string]string) float64 {
	var n float64
	for _, m := range f.GetMetric() {
		if matches(m, want) {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

func sumGauge(f *dto.MetricFamily, want map[string]string) float64 {
	var n float64
	for _, m := range f.GetMetric() {
		if matches(m, want) {
			n += m.GetGauge().GetValue()
		}
	}
	return n
}
