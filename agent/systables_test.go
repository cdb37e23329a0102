package agent

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
)

// TestSysRefusal: the rules of sysTables, case by case.
func TestSysRefusal(t *testing.T) {
	dev, hub := hlc.NodeID(0xd1), hlc.NodeID(0xa1)
	w := func(o hlc.NodeID, table string, del bool, fields map[string]any) *crdt.Write {
		cw := &crdt.Write{Origin: o, Seq: 1, Table: table, ID: "x", Delete: del}
		for name, v := range fields {
			cw.Fields = append(cw.Fields, crdt.FieldValue{Name: name, Value: crdt.MustValue(v)})
		}
		return cw
	}
	for _, c := range []struct {
		name string
		w    *crdt.Write
		hub  bool
		deny string
	}{
		{"ordinary table", w(dev, "jobs", true, nil), false, ""},
		{"device sets a policy", w(dev, policyTable, false, map[string]any{"policy": "lww"}), false, "may not write system table _replicad_policy"},
		{"hub sets a policy", w(hub, policyTable, false, map[string]any{"policy": "lww"}), true, ""},
		{"device publishes a sync error", w(dev, errorTable, false, map[string]any{"error": "{}"}), false, "may not write system table _replicad_errors"},
		{"device marks the read rules", w(dev, securityTable, false, map[string]any{"restricted": false}), false, "may not write system table _replicad_security"},
		{"device resolves a duplicate", w(dev, dedupe.Table, false, map[string]any{"status": "kept", "resolution": map[string]any{"action": "keep"}}), false, ""},
		{"device reopens a duplicate", w(dev, dedupe.Table, false, map[string]any{"status": "open"}), false, "field(s) status of system table _replicad_duplicates"},
		{"device flags a duplicate", w(dev, dedupe.Table, false, map[string]any{"table": "jobs", "status": "kept"}), false, "field(s) table of system table _replicad_duplicates"},
		{"device deletes a flag", w(dev, dedupe.Table, true, nil), false, "may not delete records of system table _replicad_duplicates"},
		{"device publishes a grant", w(dev, authz.GrantTable, false, map[string]any{authz.GrantField(dev): "g"}), false, "may not write system table _replicad_grants"},
		{"hub publishes its grant", w(hub, authz.GrantTable, false, map[string]any{authz.GrantField(hub): "g"}), true, ""},
		{"hub writes another hub's grant", w(hub, authz.GrantTable, false, map[string]any{authz.GrantField(dev): "g"}), true, "may not write field(s) hub-00000000000000d1"},
		{"hub deletes a grant record", w(hub, authz.GrantTable, true, nil), true, "may not delete"},
		{"device declares an index", w(dev, indexTable, false, map[string]any{"table": "jobs", "fields": []any{"a"}}), false, "may not write system table _replicad_index (the secondary indexes the hubs declare"},
		{"device drops a view", w(dev, viewTable, true, nil), false, "may not delete records of system table _replicad_view"},
		{"hub declares an index", w(hub, indexTable, false, map[string]any{"table": "jobs", "fields": []any{"a"}}), true, ""},
		{"device, unknown system table", w(dev, "_replicad_future", false, map[string]any{"a": 1}), false, "(hubs only)"},
		{"hub, unknown system table", w(hub, "_replicad_future", false, map[string]any{"a": 1}), true, ""},
	} {
		got := sysTables.Refusal(c.w, c.hub)
		if c.deny == "" && got != "" || c.deny != "" && !strings.Contains(got, c.deny) {
			t.Errorf("%s: %q, want %q", c.name, got, c.deny)
		}
	}
}

// TestAPIRefusesSystemTableWrites: every API route that writes a record
// answers 403 for a system table and stores nothing; reads stay open.
func TestAPIRefusesSystemTableWrites(t *testing.T) {
	hub, _ := runAgent(t, func() Config {
		c := testConfig(t, "hub")
		c.Policies = map[string]string{"jobs": "server-wins"}
		return c
	}())
	base := "http://" + hub.APIAddr()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/v1/tables/_replicad_policy/records/jobs", `{"fields":{"policy":"manual"}}`},
		{"PUT", "/v1/tables/_replicad_policy/records/jobs?draft=true", `{"fields":{"policy":"manual"}}`},
		{"DELETE", "/v1/tables/_replicad_policy/records/jobs", ``},
		{"PUT", "/v1/tables/_replicad_errors/records/e1", `{"fields":{"error":"x"}}`},
		{"PUT", "/v1/tables/_replicad_duplicates/records/d1", `{"fields":{"status":"kept"}}`},
		{"PUT", "/v1/tables/_replicad_grants/records/g1", `{"fields":{"hub-1":"x"}}`},
		{"PUT", "/v1/tables/_replicad_anything/records/a", `{"fields":{"a":1}}`},
		{"POST", "/v1/conflicts/_replicad_policy/jobs/policy", `{"value":"manual"}`},
		{"POST", "/v1/drafts/_replicad_policy/jobs/commit", ``},
	} {
		code, body := do(c.method, c.path, c.body)
		if code != http.StatusForbidden || !strings.Contains(body, "system table") {
			t.Errorf("%s %s: %d %s, want 403 naming the system table", c.method, c.path, code, body)
		}
	}
	hub.cur.RLock()
	k := hub.cur.Get().n.PolicyOf("jobs")
	hub.cur.RUnlock()
	if k != policy.ServerWins {
		t.Errorf("jobs is %s after the refused writes", k)
	}
	if code, body := do("GET", "/v1/tables/_replicad_policy/records/jobs", ""); code != http.StatusOK || !strings.Contains(body, "server-wins") {
		t.Errorf("reading the policy record: %d %s", code, body)
	}
}

// TestHubRefusesSystemTableWrites: a device whose own code writes the
// policy table (and the other system tables) has those writes refused by
// the hub, over sync with and without TLS and over a gossip push: not
// applied, written back over (the device converges), logged and counted,
// and the device's honest writes after them still apply. The server-wins
// table stays server-wins: an honest device's later conflicting change is
// undone.
func TestHubRefusesSystemTableWrites(t *testing.T) {
	for _, mode := range []string{"plain", "tls", "gossip"} {
		t.Run(mode, func(t *testing.T) {
			hcfg := testConfig(t, "hub")
			hcfg.Policies = map[string]string{"sw": "server-wins"}
			dcfg, ocfg := testConfig(t, "device"), testConfig(t, "device")
			if mode == "tls" {
				pki := tlsCluster(t, map[string]string{"hub": "hub", "d1": "device", "d2": "device"})
				hcfg, dcfg, ocfg = withTLS(hcfg, pki, "hub"), withTLS(dcfg, pki, "d1"), withTLS(ocfg, pki, "d2")
			}
			hub, hubLogs := runAgent(t, hcfg)
			if mode != "gossip" {
				dcfg.Hubs = []string{hub.syncAddr()}
			}
			ocfg.Hubs = []string{hub.syncAddr()}
			dev, _ := runAgent(t, dcfg)
			other, _ := runAgent(t, ocfg)
			sync := func(a *Agent) {
				t.Helper()
				if f := a.syncT(t); len(f) > 0 {
					t.Fatalf("sync: %v", f)
				}
			}
			hub.write(t, "sw", "wo1", "start", "08:00")
			sync(other)
			if mode != "gossip" {
				sync(dev)
			}

			// The device's own code writes what only hubs write.
			dev.cur.RLock()
			var forged []*crdt.Write
			for _, f := range []struct {
				table, id string
				fields    map[string]any
			}{
				{policyTable, "sw", map[string]any{node.HistoryField(dev.cur.Get().clock.Now()): "lww", "policy": "lww"}},
				{errorTable, "forged", map[string]any{"error": `{"table":"sw"}`, "nodes": []any{}}},
				{securityTable, readsMarker, map[string]any{"restricted": false}},
				{"notes", "n1", map[string]any{"text": "honest"}},
			} {
				var fv []crdt.FieldValue
				for name, v := range f.fields {
					fv = append(fv, crdt.FieldValue{Name: name, Value: crdt.MustValue(v)})
				}
				res, err := dev.cur.Get().localWrite(f.table, f.id, fv, false)
				if err != nil {
					t.Fatal(err)
				}
				forged = append(forged, res.Write)
			}
			devNode := dev.cur.Get().node
			dev.cur.RUnlock()
			if mode == "gossip" {
				// What gossip's OnMessage hands the engine.
				hub.cur.RLock()
				for _, w := range forged {
					b, err := crdt.AppendWrite(nil, w)
					if err != nil {
						t.Fatal(err)
					}
					hub.cur.Get().engine.HandlePushFrom(devNode, b)
				}
				hub.cur.RUnlock()
			} else {
				sync(dev)
			}
			waitLog(t, hubLogs, "system-table write refused")
			if !strings.Contains(scrape(t, hub), "replicad_system_writes_refused_total 3") {
				t.Errorf("metrics: want 3 refused system-table writes")
			}
			check := func(a *Agent, who string) {
				t.Helper()
				if v, _ := a.value(t, policyTable, "sw", "policy"); v != "server-wins" {
					t.Errorf("%s: policy of sw %q", who, v)
				}
				a.cur.RLock()
				k := a.cur.Get().n.PolicyAt("sw", a.cur.Get().clock.Now())
				a.cur.RUnlock()
				if k != policy.ServerWins {
					t.Errorf("%s: sw judged as %s now", who, k)
				}
				if _, ok := a.value(t, errorTable, "forged", "error"); ok {
					t.Errorf("%s: holds the forged sync error", who)
				}
				if v, _ := a.value(t, "notes", "n1", "text"); v != "honest" {
					t.Errorf("%s: the device's honest write after the refused ones: %q", who, v)
				}
			}
			eventually(t, "the hub writes back over the refused writes", func() bool {
				return len(hub.syncErrors(t, node.SystemPolicy)) == 3
			})
			check(hub, "hub")
			if errs := hub.syncErrors(t, node.SystemPolicy); !strings.Contains(strings.Join(errs, "\n"), "may not write system table _replicad_policy") {
				t.Errorf("hub sync errors: %q", errs)
			}
			// The device converges and lists the refusals.
			if mode != "gossip" {
				sync(dev)
				check(dev, "device")
				if errs := dev.syncErrors(t, node.SystemPolicy); len(errs) != 3 {
					t.Errorf("device sync errors: %q", errs)
				}
			}

			// An honest server-wins conflict is still decided server-wins.
			sync(other)
			hub.write(t, "sw", "wo1", "end", "12:00")
			other.write(t, "sw", "wo1", "start", "09:00") // without seeing the hub's change
			sync(other)
			eventually(t, "server-wins undoes the honest device's change", func() bool {
				v, _ := hub.value(t, "sw", "wo1", "start")
				return v == "08:00" && len(hub.syncErrors(t, string(policy.ServerWins))) == 1
			})
			// (A session the device's own write started may still be under
			// way: sync until the undo arrives.)
			eventually(t, "the other device takes the undo", func() bool {
				sync(other)
				v, _ := other.value(t, "sw", "wo1", "start")
				return v == "08:00"
			})
			check(other, "other device")
		})
	}
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAdmitRecordAndConfig: a hub takes a system table's whole records
// from hubs only; a policy cannot be configured for a system table.
func TestAdmitRecordAndConfig(t *testing.T) {
	hub, hubLogs := runAgent(t, testConfig(t, "hub"))
	hub.cur.RLock()
	r := hub.cur.Get()
	for _, c := range []struct {
		role, table string
		want        bool
	}{
		{"device", policyTable, false}, {"", errorTable, false}, {"hub", policyTable, true}, {"device", "jobs", true},
	} {
		if got := r.sys.AdmitRecord(replication.Peer{Node: 0xd1, Role: c.role}, c.table, "x"); got != c.want {
			t.Errorf("a whole record of %s from a %q peer: admitted %v, want %v", c.table, c.role, got, c.want)
		}
	}
	hub.cur.RUnlock()
	waitLog(t, hubLogs, "a whole record of a system table is taken from hubs only")
	cfg := testConfig(t, "hub")
	cfg.Policies = map[string]string{"_replicad_policy": "manual"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "system table") {
		t.Errorf("a policy for a system table: %v", err)
	}
}

// TestRelayedHubPolicyAfterRestart: a hub takes another hub's policy
// change relayed by a device when it has met that hub before, even across
// its own restart (the peer table remembers roles); a device's own policy
// write relayed the same way is still refused.
func TestRelayedHubPolicyAfterRestart(t *testing.T) {
	acfg := testConfig(t, "hub")
	hubA, _ := runAgentStoppable(t, acfg)
	bcfg := testConfig(t, "hub")
	bcfg.NoArbiter = true
	bcfg.Policies = map[string]string{"t": "client-wins"}
	bcfg.Hubs = []string{hubA.syncAddr()}
	hubB, _ := runAgent(t, bcfg)
	eventually(t, "hub B publishes its policy", func() bool {
		v, _ := hubB.value(t, policyTable, "t", "policy")
		return v == "client-wins"
	})
	hubB.mustSync(t) // A meets B as a hub
	if v, _ := hubA.value(t, policyTable, "t", "policy"); v != "client-wins" {
		t.Fatalf("hub A: policy of t %q", v)
	}
	hubA.stop(t)
	acfg.APIAddr, acfg.SyncAddr = "127.0.0.1:0", "127.0.0.1:0"
	hubA, aLogs := runAgent(t, acfg)

	// B changes the policy; a device brings the change from B to A.
	hubB.cur.RLock()
	err := hubB.cur.Get().n.PublishPolicies(map[string]string{"t": "server-wins"})
	hubB.cur.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	dcfg := testConfig(t, "device")
	dcfg.Hubs = []string{hubB.syncAddr()}
	dev, _ := runAgent(t, dcfg)
	dev.mustSync(t)
	dev.syncWithOnly(t, hubA.syncAddr())
	if v, _ := hubA.value(t, policyTable, "t", "policy"); v != "server-wins" {
		t.Errorf("hub A after the relay: policy of t %q, want B's server-wins", v)
	}
	if aLogs.has("system-table write refused") {
		t.Error("hub A refused hub B's relayed policy write")
	}
	// The device's own policy write, relayed the same way: refused.
	dev.write(t, policyTable, "t", "policy", "lww")
	dev.syncWithOnly(t, hubA.syncAddr())
	waitLog(t, aLogs, "system-table write refused")
	if v, _ := hubA.value(t, policyTable, "t", "policy"); v != "server-wins" {
		t.Errorf("hub A: policy of t %q after the device's write", v)
	}
}
