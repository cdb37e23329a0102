package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// syncErrorsSetup: a hub with a server-wins table (sw) and an lww table
// (wo, the default), and a technician who changes both offline while the
// dispatcher (on the hub) changes the same fields later; when the
// technician syncs, the hub undoes its server-wins change (rejected) and
// logs that its lww value lost to the dispatcher's later one
// (overridden), and the technician mirrors both. It returns the hub and
// the technician once the technician lists both entries.
func syncErrorsSetup(t *testing.T) (hub, tech *node) {
	t.Helper()
	hub = startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "sw=server-wins")
	tech = startNode(t, "tech", "--hub", hub.sync, "--pull-interval", "1s")
	for _, tb := range []string{"sw", "wo"} {
		hub.mustCLI("put", tb, "wo1", "start=08:00")
	}
	tech.mustCLI("sync")
	tech.mustCLI("offline")
	tech.mustCLI("put", "sw", "wo1", "start=09:00")
	tech.mustCLI("put", "wo", "wo1", "start=09:00")
	time.Sleep(5 * time.Millisecond) // the dispatcher's lww stamp is later
	hub.mustCLI("put", "sw", "wo1", "start=07:00")
	hub.mustCLI("put", "wo", "wo1", "start=07:00")
	tech.mustCLI("online")
	eventually(t, "the technician mirrors the hub's sync errors on sw and wo", func() error {
		tech.mustCLI("sync")
		es := errorsOf(t, tech)
		got := map[string]bool{}
		for _, e := range es {
			got[e.Table] = true
		}
		if !got["sw"] || !got["wo"] {
			return fmt.Errorf("technician's sync errors: %+v", es)
		}
		return nil
	})
	return hub, tech
}

type cliSyncError struct {
	ID     uint64 `json:"id"`
	Time   string `json:"time"`
	Table  string `json:"table"`
	Policy string `json:"policy"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// errorsOf lists n's sync errors through `replicad errors` (JSON).
func errorsOf(t *testing.T, n *node, args ...string) []cliSyncError {
	t.Helper()
	var out struct {
		Errors []cliSyncError `json:"errors"`
	}
	raw := n.mustCLI(append([]string{"errors", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("replicad errors: %v\n%s", err, raw)
	}
	return out.Errors
}

// TestSyncErrorTimes: every sync error carries the time it was made, the
// hub's own entries (made by its arbiter) as well as the mirrors on the
// device, in the CLI and the API alike.
func TestSyncErrorTimes(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	hub, tech := syncErrorsSetup(t)
	end := time.Now().Add(time.Minute)
	for _, n := range []*node{hub, tech} {
		es := errorsOf(t, n)
		if len(es) == 0 {
			t.Fatalf("%s: no sync errors", n.name)
		}
		for _, e := range es {
			at, err := time.Parse(time.RFC3339Nano, e.Time)
			if err != nil || at.Before(start) || at.After(end) {
				t.Errorf("%s: sync error %d (%s, %s) is dated %q (%v): want a time of this test run", n.name, e.ID, e.Table, e.Policy, e.Time, err)
			}
		}
		api, err := n.client().SyncErrors(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range api {
			if at, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || at.Year() < 2000 {
				t.Errorf("%s: API sync error %d dated %q", n.name, e.ID, e.Time)
			}
		}
	}
}

// TestSyncErrorKinds: an lww outcome is logged as "overridden", a
// server-wins undo as "rejected", on the hub and in the device's mirror;
// the CLI and the API filter by kind, the status counts them apart
// (sync_errors: rejected changes; overridden), and so do the metrics.
func TestSyncErrorKinds(t *testing.T) {
	hub, tech := syncErrorsSetup(t)
	for _, n := range []*node{hub, tech} {
		kinds := map[string]string{}
		for _, e := range errorsOf(t, n) {
			kinds[e.Table] = e.Kind
		}
		if kinds["sw"] != "rejected" || kinds["wo"] != "overridden" {
			t.Errorf("%s: kinds by table %v, want sw rejected, wo overridden", n.name, kinds)
		}
		for _, k := range []string{"rejected", "overridden"} {
			es := errorsOf(t, n, "--kind", k)
			if len(es) == 0 {
				t.Errorf("%s: errors --kind %s lists nothing", n.name, k)
			}
			for _, e := range es {
				if e.Kind != k {
					t.Errorf("%s: errors --kind %s lists %+v", n.name, k, e)
				}
			}
		}
		var st struct {
			SyncErrors *int `json:"sync_errors"`
			Overridden *int `json:"overridden"`
		}
		if err := json.Unmarshal([]byte(n.mustCLI("status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.SyncErrors == nil || st.Overridden == nil || *st.SyncErrors != 1 || *st.Overridden != 1 {
			t.Errorf("%s: status sync_errors %v overridden %v, want 1 and 1", n.name, st.SyncErrors, st.Overridden)
		}
		m := metricsOf(t, n)
		for _, want := range []string{`replicad_sync_errors{kind="rejected"} 1`, `replicad_sync_errors{kind="overridden"} 1`} {
			if !strings.Contains(m, want) {
				t.Errorf("%s: metrics lack %s", n.name, want)
			}
		}
	}
	if _, errOut, code := hub.cli("errors", "--kind", "bogus"); code == 0 || !strings.Contains(errOut, "rejected or overridden") {
		t.Errorf("errors --kind bogus: exit %d, %q", code, errOut)
	}
	resp, err := http.Get("http://" + hub.api + "/v1/sync-errors?kind=bogus")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?kind=bogus: HTTP %d, want 400", resp.StatusCode)
	}
}
