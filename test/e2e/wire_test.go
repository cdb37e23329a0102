package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
)

// strict decodes body into out refusing any field out does not declare
// (and trailing data): the agent's answer must be exactly an api type.
func strict(t *testing.T, what, body string, out any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: the answer does not decode strictly into %T: %v\n%s", what, out, err, body)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the answer\n%s", what, body)
	}
}

// wireDo makes a request and decodes its 200 answer strictly into out.
func wireDo(t *testing.T, n *node, method, path, body string, out any) {
	t.Helper()
	code, ans := httpDo(t, n, method, path, body)
	if code != 200 {
		t.Fatalf("%s %s on %s: %d %s", method, path, n.name, code, ans)
	}
	strict(t, method+" "+path+" on "+n.name, ans, out)
}

// TestWireFormDecodesStrictly: every answer of the agent's HTTP API,
// taken from real hubs and devices with conflicts, sync errors, drafts,
// duplicates, a workflow and profiles in them, decodes into its type of
// package api with no field left over, so the server and the client
// (which decodes into the same types) cannot drift apart. Each answer is
// also checked to carry the parts that make its shape (a candidate with
// its base, a sync error of each kind, a draft, a delivery ...).
func TestWireFormDecodesStrictly(t *testing.T) {
	h := newWebhook(t)
	conf := filepath.Join(t.TempDir(), "hub.hcl")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
workflow "notify" {
  table   = "jobs"
  webhook = %q
}
`, h.srv.URL+"/hook")), 0o644); err != nil {
		t.Fatal(err)
	}
	pfile := filepath.Join(t.TempDir(), "profiles.hcl")
	if err := os.WriteFile(pfile, []byte(profilesBase), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--config", conf, "--profiles", pfile,
		"--policy", "jobs=manual", "--policy", "sw=server-wins", "--keys", "contacts=email")
	d1 := startNode(t, "d1", "--hub", hub.sync, "--gossip-addr", "off", "--hub-api", hub.api)
	d2 := startNode(t, "d2", "--hub", hub.sync, "--gossip-addr", "off")

	// A manual conflict with its base (jobs), a rejected change (sw) and
	// an overridden value (wo), a suspected duplicate (contacts).
	d1.mustCLI("put", "jobs", "j1", "title=base")
	hub.mustCLI("put", "sw", "s1", "start=08:00")
	hub.mustCLI("put", "wo", "w1", "start=08:00")
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	d1.mustCLI("offline")
	d1.mustCLI("put", "jobs", "j1", "title=from-d1")
	d1.mustCLI("put", "sw", "s1", "start=09:00")
	d1.mustCLI("put", "wo", "w1", "start=09:00")
	d1.mustCLI("put", "contacts", "c1", "email=a@x")
	d1.mustCLI("put", "contacts", "c2", "email=a@x")
	d2.mustCLI("put", "jobs", "j1", "title=from-d2")
	time.Sleep(5 * time.Millisecond) // the hub's lww stamp is later than d1's
	hub.mustCLI("put", "sw", "s1", "start=07:00")
	hub.mustCLI("put", "wo", "w1", "start=07:00")
	d2.mustCLI("sync")
	d1.mustCLI("online")

	var sum api.Summary
	wireDo(t, d1, "POST", "/v1/sync", "", &sum)
	if sum.Partners != 1 || sum.Succeeded != 1 || sum.Decisions == nil {
		t.Fatalf("d1's sync: %+v", sum)
	}
	var conflicts api.ConflictList
	kinds := map[string]bool{}
	eventually(t, "the hub lists the field conflict with its base and the duplicate", func() error {
		wireDo(t, hub, "GET", "/v1/conflicts", "", &conflicts)
		for _, c := range conflicts.Conflicts {
			kinds[c.Kind] = kinds[c.Kind] || c.Kind == "duplicate" || c.Base != nil && len(c.Candidates) == 2
		}
		if !kinds["field"] || !kinds["duplicate"] {
			return fmt.Errorf("conflicts %+v", conflicts.Conflicts)
		}
		return nil
	})
	var errs api.SyncErrorList
	eventually(t, "d1 mirrors a rejected and an overridden change", func() error {
		wireDo(t, d1, "POST", "/v1/sync", "", &sum)
		wireDo(t, d1, "GET", "/v1/sync-errors", "", &errs)
		got := map[string]bool{}
		for _, e := range errs.Errors {
			got[e.Kind] = true
		}
		if !got["rejected"] || !got["overridden"] {
			return fmt.Errorf("sync errors %+v", errs.Errors)
		}
		return nil
	})

	var rec api.Record
	eventually(t, "d2 sees the conflict and its base", func() error {
		d2.mustCLI("sync")
		wireDo(t, d2, "GET", "/v1/tables/jobs/records/j1", "", &rec)
		if len(rec.Conflicts["title"]) != 2 || rec.Bases["title"] == nil {
			return fmt.Errorf("d2's j1: %+v", rec)
		}
		return nil
	})
	var page api.Page
	wireDo(t, d2, "GET", "/v1/tables/jobs/records?limit=1", "", &page)
	if len(page.Records) != 1 {
		t.Fatalf("page %+v", page)
	}
	wireDo(t, hub, "POST", "/v1/conflicts/jobs/j1/title", `{"pick":0}`, &rec)

	// Drafts and online reads on d1.
	var drafted api.DraftedRecord
	wireDo(t, d1, "PUT", "/v1/tables/jobs/records/j2?draft=true", `{"fields":{"title":"draft"}}`, &drafted)
	wireDo(t, d1, "GET", "/v1/tables/jobs/records/j2?draft=true", "", &drafted)
	if drafted.Draft == nil {
		t.Fatalf("no draft: %+v", drafted)
	}
	var draft api.Draft
	wireDo(t, d1, "GET", "/v1/drafts/jobs/j2", "", &draft)
	var drafts api.DraftPage
	wireDo(t, d1, "GET", "/v1/drafts", "", &drafts)
	if len(drafts.Drafts) != 1 {
		t.Fatalf("drafts %+v", drafts)
	}
	var discarded api.DiscardedDraft
	wireDo(t, d1, "DELETE", "/v1/drafts/jobs/j2", "", &discarded)
	var online api.OnlineRecord
	wireDo(t, d1, "GET", "/v1/tables/wo/records/w1?online=true", "", &online)
	if !online.Online || online.HubAPI == "" {
		t.Fatalf("online read %+v", online)
	}
	var onlinePage api.OnlinePage
	wireDo(t, d1, "GET", "/v1/tables/wo/records?online=true", "", &onlinePage)

	// Duplicates, workflows, profiles on the hub.
	var dups api.DuplicateList
	wireDo(t, hub, "GET", "/v1/duplicates", "", &dups)
	if len(dups.Duplicates) != 1 {
		t.Fatalf("duplicates %+v", dups)
	}
	var res api.DuplicateResolution
	wireDo(t, hub, "POST", "/v1/duplicates/contacts/c2", `{"action":"merge","with":"c1"}`, &res)
	if res.Record == nil || res.Duplicate.Status != "merged" {
		t.Fatalf("merge %+v", res)
	}
	var flows api.WorkflowList
	var deliveries api.DeliveryPage
	eventually(t, "the workflow delivered the jobs", func() error {
		wireDo(t, hub, "GET", "/v1/workflows", "", &flows)
		wireDo(t, hub, "GET", "/v1/workflows/notify/deliveries", "", &deliveries)
		if len(flows.Workflows) != 1 || len(deliveries.Deliveries) == 0 {
			return fmt.Errorf("workflows %+v, deliveries %+v", flows, deliveries)
		}
		return nil
	})
	var flow api.WorkflowDetail
	wireDo(t, hub, "GET", "/v1/workflows/notify", "", &flow)
	var d1Status api.Status
	wireDo(t, d1, "GET", "/v1/status", "", &d1Status)
	var preview api.Preview
	wireDo(t, hub, "GET", "/v1/profiles/preview?device="+d1Status.Node+"&profile=wide", "", &preview)
	if preview.Profile != "wide" || len(preview.Tables) == 0 {
		t.Fatalf("preview %+v", preview)
	}
	var reloaded api.ProfilesReloaded
	wireDo(t, hub, "POST", "/v1/profiles/reload", "", &reloaded)

	// The feed, peers, status, connectivity, compact, reset.
	var changes api.Changes
	wireDo(t, hub, "GET", "/v1/changes?since=0", "", &changes)
	if len(changes.Changes) == 0 {
		t.Fatal("no changes on the hub")
	}
	var peers api.PeerList
	wireDo(t, hub, "GET", "/v1/peers", "", &peers)
	pending := false
	for _, p := range peers.Peers {
		pending = pending || p.Pending != nil
	}
	if len(peers.Peers) < 2 || !pending {
		t.Fatalf("hub's peers (none with pending writes counted) %+v", peers)
	}
	for _, n := range []*node{hub, d1} {
		var status api.Status
		wireDo(t, n, "GET", "/v1/status", "", &status)
		if status.Node == "" || len(status.Peers) == 0 || len(status.Tables) == 0 || status.Disk.Total == 0 {
			t.Fatalf("%s's status %+v", n.name, status)
		}
	}
	var conn api.ConnectivityRequest
	wireDo(t, d2, "POST", "/v1/connectivity", `{"online":true}`, &conn)
	var compact api.CompactResult
	wireDo(t, d2, "POST", "/v1/compact", "{}", &compact)
	var reset api.ResetResult
	wireDo(t, d2, "POST", "/v1/reset", `{"confirm":true}`, &reset)
	if reset.Node == "" || reset.MovedTo == "" {
		t.Fatalf("reset %+v", reset)
	}
	for _, e := range errs.Errors {
		if e.Kind == "rejected" {
			wireDo(t, d1, "POST", fmt.Sprintf("/v1/sync-errors/%d/retry", e.ID), "", &rec)
			break
		}
	}

	code, body := httpDo(t, d1, "GET", "/v1/tables/jobs/records/nothing-here", "")
	var apiErr api.Error
	strict(t, "a 404", body, &apiErr)
	if code != 404 || apiErr.Error == "" {
		t.Fatalf("404 answer: %d %+v", code, apiErr)
	}
}

// TestWireFormParkedAndSecurity: the parked writes (listed and released)
// and the security answers decode strictly into their api types.
func TestWireFormParkedAndSecurity(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	fast := startNode(t, "fast", "--hub", hub.sync, "--gossip-addr", "off", "--clock-offset", "1h")
	fast.mustCLI("put", "jobs", "j1", "title=from the future")
	fast.mustCLI("sync")
	var page api.ParkedPage
	eventually(t, "the hub parks the write", func() error {
		wireDo(t, hub, "GET", "/v1/parked", "", &page)
		if len(page.Parked) != 1 || page.Total != 1 || len(page.Parked[0].Fields) != 1 {
			return fmt.Errorf("parked %+v", page)
		}
		return nil
	})
	p := page.Parked[0]
	var rel api.ParkedRelease
	wireDo(t, hub, "POST", fmt.Sprintf("/v1/parked/%s/%d/release", p.Origin, p.Seq), "", &rel)
	if !rel.Released || rel.HLC == "" {
		t.Fatalf("release %+v", rel)
	}
	var sec api.SecurityStatus
	wireDo(t, hub, "GET", "/v1/security", "", &sec)
	var grants []api.GrantStatus
	wireDo(t, hub, "GET", "/v1/grants", "", &grants)
}
