package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// TestServerWinsBypassThroughSystemTables: a device tries to turn a
// server-wins table into lww by writing the policy table, first through
// the API and the CLI (403, nothing stored), then by forging the write
// into a sync session with the hub (a replica in the test process whose
// store holds the write, as a modified agent's would). The hub refuses
// and logs it and the table stays server-wins on every replica; the
// forger's honest write in the same session is applied; an honest
// device's later server-wins conflict is still decided server-wins.
func TestServerWinsBypassThroughSystemTables(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "sw=server-wins")
	tech := startNode(t, "tech", "--hub", hub.sync, "--pull-interval", "1s")
	ctx := context.Background()
	hub.mustCLI("put", "sw", "wo1", "start=08:00")
	tech.mustCLI("sync")

	// Through the API and the CLI: refused with a clear message.
	for _, args := range [][]string{
		{"put", "_replicad_policy", "sw", `policy="lww"`},
		{"delete", "_replicad_policy", "sw"},
		{"put", "_replicad_errors", "e1", `error="x"`},
	} {
		_, errOut, code := tech.cli(args...)
		if code == 0 || !strings.Contains(errOut, "system table") {
			t.Errorf("replicad %s: exit %d, stderr %q: want a refusal naming the system table", strings.Join(args, " "), code, errOut)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+tech.api+"/v1/tables/_replicad_policy/records/sw", strings.NewReader(`{"fields":{"policy":"lww"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("PUT of the policy table: HTTP %d, want 403", resp.StatusCode)
	}

	// Forged into a sync session.
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/forger", NoSync: true, ClusterID: "replicad", MemTableSize: 1 << 20, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	eng := replication.NewEngine(replication.Config{
		Local: replication.Local{Node: st.NodeID(), Cluster: "replicad", Role: "device", Scope: replication.FullScope(), Clock: clock, Store: st},
		Hubs:  []string{hub.sync}, PullInterval: time.Hour,
	})
	defer eng.Close()
	syncForger := func() {
		t.Helper()
		if s := eng.SyncNow(ctx, nil); len(s.Failed) > 0 {
			t.Fatalf("forger's sync: %v", s.Failed)
		}
	}
	syncForger() // it holds the hub's policy record: its write covers it
	lww := crdt.MustValue("lww")
	if _, err := st.Write(clock, "_replicad_policy", "sw", []crdt.FieldValue{
		{Name: fmt.Sprintf("h%020d", uint64(clock.Now())), Value: lww}, {Name: "policy", Value: lww}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(clock, "notes", "n1", []crdt.FieldValue{{Name: "text", Value: crdt.MustValue("honest")}}, false); err != nil {
		t.Fatal(err)
	}
	syncForger()

	policyOf := func(n *node) string {
		r, err := n.client().Get(ctx, "_replicad_policy", "sw")
		if err != nil {
			return err.Error()
		}
		return string(r.Fields["policy"])
	}
	if p := policyOf(hub); p != `"server-wins"` {
		t.Errorf("hub: policy of sw %s after the forged write", p)
	}
	if r, err := hub.client().Get(ctx, "notes", "n1"); err != nil || string(r.Fields["text"]) != `"honest"` {
		t.Errorf("hub: the forger's honest write in the same session: %v %v", r, err)
	}
	eventually(t, "the hub logs the refusal", func() error {
		if !strings.Contains(hub.log.String(), "system-table write refused") {
			return fmt.Errorf("no refusal in the hub's log")
		}
		return nil
	})
	m := metricsOf(t, hub)
	if !strings.Contains(m, "replicad_system_writes_refused_total 1") {
		t.Errorf("hub metrics lack one refused system-table write")
	}
	// The hub wrote back over it: the forger converges to server-wins.
	eventually(t, "the forger converges", func() error {
		syncForger()
		rec, err := st.Get("_replicad_policy", "sw")
		if err != nil {
			return err
		}
		v, _ := rec.Get("policy")
		if x, _ := v.Decode(); x != "server-wins" {
			return fmt.Errorf("forger's policy of sw: %v", x)
		}
		return nil
	})

	// An honest device's server-wins conflict is still decided server-wins.
	tech.mustCLI("sync")
	tech.mustCLI("offline")
	tech.mustCLI("put", "sw", "wo1", "start=09:00")
	hub.mustCLI("put", "sw", "wo1", "end=12:00")
	tech.mustCLI("online")
	for _, n := range []*node{hub, tech} {
		eventually(t, n.name+": server-wins undoes the technician's change", func() error {
			tech.mustCLI("sync")
			r, err := n.client().Get(ctx, "sw", "wo1")
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != `{"end":"12:00","start":"08:00"}` || r.Pending {
				return fmt.Errorf("sw/wo1 = %s (pending %v)", got, r.Pending)
			}
			if p := policyOf(n); p != `"server-wins"` {
				return fmt.Errorf("policy of sw %s", p)
			}
			return nil
		})
	}
}

func metricsOf(t *testing.T, n *node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
