package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/client"
)

// httpDo makes a raw API request and returns the status and body.
func httpDo(t *testing.T, n *node, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dump returns the node's full state (records and change log) as the
// testing-only debug API shows it.
func dump(t *testing.T, n *node) string {
	t.Helper()
	code, body := httpDo(t, n, "GET", "/v1/debug/dump", "")
	if code != 200 {
		t.Fatalf("%s: debug dump: %d %s", n.name, code, body)
	}
	return body
}

// TestDraftsStayOnTheDevice: a draft is kept on the device only (a sync
// with the hub carries nothing of it, and a second device never sees
// it), is listed and read overlaid, and reaches the hub and the other
// device only once committed; a discarded draft never does.
func TestDraftsStayOnTheDevice(t *testing.T) {
	t.Setenv("REPLICAD_TESTING_DEBUG_API", "1")
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	d1 := startNode(t, "d1", "--hub", hub.sync, "--pull-interval", "1s")
	d2 := startNode(t, "d2", "--hub", hub.sync, "--pull-interval", "1s")
	ctx := context.Background()

	d1.mustCLI("put", "jobs", "j1", "title=fix pump", "prio:=1")
	eventually(t, "j1 reaches d2", func() error { _, err := d2.client().Get(ctx, "jobs", "j1"); return err })

	// Drafts: a change to an existing record, and a new record.
	d1.mustCLI("put", "--draft", "jobs", "j1", "title=DRAFT-TITLE-zqxw", "note=DRAFT-NOTE-zqxw")
	d1.mustCLI("put", "--draft", "jobs", "j1", "prio:=2")
	out := d1.mustCLI("put", "--draft", "jobs", "j9", "title=DRAFT-NEW-zqxw")
	var dr client.DraftedRecord
	if err := json.Unmarshal([]byte(out), &dr); err != nil || dr.Draft == nil || dr.Draft.RecordExists || string(dr.Fields["title"]) != `"DRAFT-NEW-zqxw"` {
		t.Fatalf("put --draft of a new record: %s (%v)", out, err)
	}
	feedHead := func(n *node) string {
		st, err := n.client().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.FeedHead
	}
	head := feedHead(d1)
	if st, err := d1.client().Status(ctx); err != nil || st.Drafts != 2 {
		t.Fatalf("status drafts: %+v %v", st, err)
	}

	// The device itself: plain reads and lists show no draft; ?draft=true
	// overlays it.
	r, err := d1.client().Get(ctx, "jobs", "j1")
	if err != nil || fieldsOf(t, r) != `{"prio":1,"title":"fix pump"}` {
		t.Fatalf("plain get of a drafted record: %+v %v", r, err)
	}
	if _, err := d1.client().Get(ctx, "jobs", "j9"); !client.IsNotFound(err) {
		t.Fatalf("a draft-only record is readable without ?draft=true: %v", err)
	}
	out = d1.mustCLI("get", "--draft", "jobs", "j1")
	dr = client.DraftedRecord{}
	if err := json.Unmarshal([]byte(out), &dr); err != nil || dr.Draft == nil || fieldsOf(t, &dr.Record) != `{"note":"DRAFT-NOTE-zqxw","prio":2,"title":"DRAFT-TITLE-zqxw"}` ||
		!dr.Draft.RecordExists || dr.Draft.Rev != 2 || dr.Draft.Changed {
		t.Fatalf("get --draft: %s (%v)", out, err)
	}
	out = d1.mustCLI("drafts")
	var dp client.DraftPage
	if err := json.Unmarshal([]byte(out), &dp); err != nil || len(dp.Drafts) != 2 || dp.Drafts[0].ID != "j1" || dp.Drafts[1].ID != "j9" {
		t.Fatalf("drafts: %s (%v)", out, err)
	}
	if p, err := d1.client().Drafts(ctx, "", "", 1); err != nil || len(p.Drafts) != 1 || p.Next != "jobs/j1" {
		t.Fatalf("drafts page 1: %+v %v", p, err)
	} else if p, err = d1.client().Drafts(ctx, "", p.Next, 1); err != nil || len(p.Drafts) != 1 || p.Drafts[0].ID != "j9" || p.Next != "" {
		t.Fatalf("drafts page 2: %+v %v", p, err)
	}

	// Sync both ways, several times: the hub and d2 never see a draft.
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	d1.mustCLI("sync")
	if feedHead(d1) != head {
		t.Fatalf("drafts moved d1's change feed: %s → %s", head, feedHead(d1))
	}
	for _, n := range []*node{hub, d2} {
		if s := dump(t, n); strings.Contains(s, "zqxw") {
			t.Fatalf("%s holds a draft's value before commit:\n%s", n.name, s)
		}
		r, err := n.client().Get(ctx, "jobs", "j1")
		if err != nil || fieldsOf(t, r) != `{"prio":1,"title":"fix pump"}` {
			t.Fatalf("%s: j1 = %+v %v", n.name, r, err)
		}
		if _, err := n.client().Get(ctx, "jobs", "j9"); !client.IsNotFound(err) {
			t.Fatalf("%s: draft-only j9: %v", n.name, err)
		}
		if p, err := n.client().Drafts(ctx, "", "", 0); err != nil || len(p.Drafts) != 0 {
			t.Fatalf("%s lists drafts: %+v %v", n.name, p, err)
		}
	}
	if s := dump(t, d1); strings.Contains(s, "zqxw") {
		t.Fatalf("d1's records or change log hold a draft's value:\n%s", s)
	}

	// Someone else changes j1 meanwhile: the draft says so.
	d2.mustCLI("put", "jobs", "j1", "status=assigned")
	eventually(t, "d2's change reaches d1", func() error {
		d1.mustCLI("sync")
		r, err := d1.client().Get(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if _, ok := r.Fields["status"]; !ok {
			return fmt.Errorf("j1 = %s", fieldsOf(t, r))
		}
		return nil
	})
	if d, err := d1.client().GetDraft(ctx, "jobs", "j1"); err != nil || d.Draft == nil || !d.Draft.Changed {
		t.Fatalf("draft after a concurrent change: %+v %v; want changed_since_draft", d, err)
	}

	// Discard j9: it never leaves the device. Commit j1: an ordinary
	// write that reaches everyone.
	d1.mustCLI("discard", "jobs", "j9")
	out = d1.mustCLI("commit", "jobs", "j1")
	r = &client.Record{}
	want := `{"note":"DRAFT-NOTE-zqxw","prio":2,"status":"assigned","title":"DRAFT-TITLE-zqxw"}`
	if err := json.Unmarshal([]byte(out), r); err != nil || fieldsOf(t, r) != want {
		t.Fatalf("commit: %s (%v), want fields %s", out, err, want)
	}
	if p, err := d1.client().Drafts(ctx, "", "", 0); err != nil || len(p.Drafts) != 0 {
		t.Fatalf("drafts after commit and discard: %+v %v", p, err)
	}
	if _, errOut, code := d1.cli("commit", "jobs", "j1"); code != 1 || !strings.Contains(errOut, "no draft") {
		t.Fatalf("second commit: exit %d %q", code, errOut)
	}
	ch, err := d1.client().Changes(ctx, head, 0)
	if err != nil || len(ch.Changes) != 2 || ch.Changes[1].ID != "j1" { // d2's status, then the commit
		t.Fatalf("d1's feed after commit: %+v %v", ch, err)
	}
	for _, n := range []*node{hub, d2} {
		eventually(t, "the commit reaches "+n.name, func() error {
			n.mustCLI("sync")
			r, err := n.client().Get(ctx, "jobs", "j1")
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != want {
				return fmt.Errorf("j1 = %s", got)
			}
			return nil
		})
		if s := dump(t, n); strings.Contains(s, "DRAFT-NEW-zqxw") {
			t.Fatalf("%s holds the discarded draft", n.name)
		}
		if _, err := n.client().Get(ctx, "jobs", "j9"); !client.IsNotFound(err) {
			t.Fatalf("%s: discarded j9: %v", n.name, err)
		}
	}

	// Drafts survive a restart.
	d1.mustCLI("put", "--draft", "jobs", "j5", "x:=1")
	d1.stop()
	d1.start()
	if p, err := d1.client().Drafts(ctx, "jobs", "", 0); err != nil || len(p.Drafts) != 1 || p.Drafts[0].ID != "j5" {
		t.Fatalf("drafts after restart: %+v %v", p, err)
	}
}

// TestDraftBadRequestsStoreNothing: bad draft requests get a 4xx with an
// error and store nothing.
func TestDraftBadRequestsStoreNothing(t *testing.T) {
	d := startNode(t, "device")
	cases := []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{"fields":{"a":1}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{"fields":{}}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{"fields":{"":1}}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1?draft=maybe", `{"fields":{"a":1}}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1?online=true", `{"fields":{"a":1}}`, 400},
		{"PUT", "/v1/tables/jo%20bs/records/j1?draft=true", `{"fields":{"a":1}}`, 400},
		{"DELETE", "/v1/tables/jobs/records/j1?draft=true", ``, 400},
		{"GET", "/v1/tables/jobs/records?draft=true", ``, 400},
		{"GET", "/v1/tables/jobs/records/j1?draft=true", ``, 404},
		{"GET", "/v1/tables/jobs/records/j1?draft=true&online=true", ``, 400},
		{"POST", "/v1/drafts/jobs/j1/commit", ``, 404},
		{"DELETE", "/v1/drafts/jobs/j1", ``, 404},
		{"GET", "/v1/drafts/jobs/j1", ``, 404},
		{"GET", "/v1/drafts?after=nope", ``, 400},
		{"GET", "/v1/drafts?table=b%20d", ``, 400},
		{"GET", "/v1/drafts?limit=-1", ``, 400},
	}
	for _, c := range cases {
		code, body := httpDo(t, d, c.method, c.path, c.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != c.code || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s %.40q: got %d %s, want %d with {\"error\":...}", c.method, c.path, c.body, code, body, c.code)
		}
	}
	ctx := context.Background()
	if p, err := d.client().Drafts(ctx, "", "", 0); err != nil || len(p.Drafts) != 0 {
		t.Errorf("drafts after rejected requests: %+v %v", p, err)
	}
	if ch, err := d.client().Changes(ctx, "0", 0); err != nil || len(ch.Changes) != 0 {
		t.Errorf("feed after rejected requests: %+v %v", ch, err)
	}
	if _, errOut, code := d.cli("put", "--draft", "jobs", "j1"); code != 2 || !strings.Contains(errOut, "FIELD=TEXT|FIELD:=JSON") {
		t.Errorf("put --draft without fields: exit %d %q", code, errOut)
	}
	if _, errOut, code := d.cli("get", "--draft", "--online", "jobs", "j1"); code != 2 || !strings.Contains(errOut, "do not go together") {
		t.Errorf("get --draft --online: exit %d %q", code, errOut)
	}
}

// TestOnlineReads: a device reads what it does not hold live from the
// hub, storing nothing; offline (set so, or the hub gone) such reads fail
// with 503 "offline: ...".
func TestOnlineReads(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	// The device does not sync with the hub (no --hub): everything on the
	// hub is outside what it holds.
	d := startNode(t, "device", "--hub-api", hub.api)
	bare := startNode(t, "bare")
	ctx := context.Background()
	hub.mustCLI("put", "jobs", "j1", "title=on the hub", "prio:=4")
	hub.mustCLI("put", "jobs", "j2", "title=also on the hub")
	d.mustCLI("put", "jobs", "mine", "title=local")
	st, err := d.client().Status(ctx)
	if err != nil || st.HubAPI != "http://"+hub.api {
		t.Fatalf("status: hub_api %q, %v", st.HubAPI, err)
	}

	if _, err := d.client().Get(ctx, "jobs", "j1"); !client.IsNotFound(err) {
		t.Fatalf("local read of a hub record: %v", err)
	}
	out := d.mustCLI("get", "--online", "jobs", "j1")
	var or client.OnlineRecord
	if err := json.Unmarshal([]byte(out), &or); err != nil || !or.Online || fieldsOf(t, &or.Record) != `{"prio":4,"title":"on the hub"}` {
		t.Fatalf("get --online: %s (%v)", out, err)
	}
	out = d.mustCLI("list", "--online", "jobs", "--limit", "1")
	var op client.OnlinePage
	if err := json.Unmarshal([]byte(out), &op); err != nil || !op.Online || len(op.Records) != 1 || op.Records[0].ID != "j1" || op.Next != "j1" {
		t.Fatalf("list --online --limit 1: %s (%v)", out, err)
	}
	if p, err := d.client().ListOnline(ctx, "jobs", "j1", 0); err != nil || len(p.Records) != 1 || p.Records[0].ID != "j2" {
		t.Fatalf("list online after j1: %+v %v", p, err)
	}
	// The hub's answer for a record it lacks, and local validation.
	if code, body := httpDo(t, d, "GET", "/v1/tables/jobs/records/nope?online=true", ""); code != 404 || !strings.Contains(body, "on the hub") {
		t.Fatalf("online read of a missing record: %d %s", code, body)
	}
	if code, body := httpDo(t, d, "GET", "/v1/tables/jobs/records?online=true&limit=x", ""); code != 400 {
		t.Fatalf("online list with a bad limit: %d %s", code, body)
	}

	// Nothing read online was stored.
	if _, err := d.client().Get(ctx, "jobs", "j1"); !client.IsNotFound(err) {
		t.Fatalf("an online read was stored: %v", err)
	}
	if p, err := d.client().List(ctx, "jobs", "", 0); err != nil || len(p.Records) != 1 || p.Records[0].ID != "mine" {
		t.Fatalf("local list after online reads: %+v %v", p, err)
	}
	if st2, err := d.client().Status(ctx); err != nil || st2.FeedHead != st.FeedHead {
		t.Fatalf("online reads moved the feed: %s → %+v %v", st.FeedHead, st2, err)
	}

	// Set offline: refused with the reason.
	d.mustCLI("offline")
	code, body := httpDo(t, d, "GET", "/v1/tables/jobs/records/j1?online=true", "")
	if code != 503 || !strings.Contains(body, "offline: this device is set offline") {
		t.Fatalf("online read while offline: %d %s", code, body)
	}
	if _, errOut, code := d.cli("list", "--online", "jobs"); code != 1 || !strings.HasPrefix(errOut, "replicad: offline:") {
		t.Fatalf("list --online while offline: exit %d %q", code, errOut)
	}
	d.mustCLI("online")
	if r, err := d.client().GetOnline(ctx, "jobs", "j2"); err != nil || r.ID != "j2" {
		t.Fatalf("online read back online: %+v %v", r, err)
	}
	// A device that does not know the hub's API says how to tell it.
	if code, body := httpDo(t, bare, "GET", "/v1/tables/jobs/records/j1?online=true", ""); code != 503 || !strings.Contains(body, "--hub-api") {
		t.Fatalf("online read without --hub-api: %d %s", code, body)
	}
	// A hub answers online reads itself.
	if r, err := hub.client().GetOnline(ctx, "jobs", "j1"); err != nil || r.ID != "j1" {
		t.Fatalf("online read on the hub: %+v %v", r, err)
	}
	// The hub gone: refused with the reason.
	hub.stop()
	code, body = httpDo(t, d, "GET", "/v1/tables/jobs/records/j1?online=true", "")
	if code != 503 || !strings.Contains(body, "offline: the hub's API at") || !strings.Contains(body, "unreachable") {
		t.Fatalf("online read with the hub down: %d %s", code, body)
	}
	if r, err := d.client().Get(ctx, "jobs", "mine"); err != nil || r.ID != "mine" {
		t.Fatalf("local reads with the hub down: %+v %v", r, err)
	}
}

// TestOnlineReadsLearnHubAPI: a device without --hub-api that gossips
// with a hub learns the hub's API address from its gossip metadata.
func TestOnlineReadsLearnHubAPI(t *testing.T) {
	hubGossip := freeAddr(t)
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", hubGossip, "--gossip-profile", "local")
	d := startNode(t, "device", "--join", hubGossip, "--gossip-profile", "local")
	ctx := context.Background()
	hub.mustCLI("put", "jobs", "j1", "title=on the hub")
	eventually(t, "the device reads the hub online", func() error {
		r, err := d.client().GetOnline(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if r.HubAPI != "http://"+hub.api || fieldsOf(t, &r.Record) != `{"title":"on the hub"}` {
			return fmt.Errorf("got %+v", r)
		}
		return nil
	})
	d.mustCLI("offline")
	if code, body := httpDo(t, d, "GET", "/v1/tables/jobs/records/j1?online=true", ""); code != 503 || !strings.Contains(body, "offline:") {
		t.Fatalf("online read while offline: %d %s", code, body)
	}
}

// TestOnlineReadsOutsideProfile: a device whose offline profile holds only
// its own jobs reads the others live from the hub; they stay off the
// device (404 "not in this device's offline profile" locally, before and
// after more syncs).
func TestOnlineReadsOutsideProfile(t *testing.T) {
	pfile := filepath.Join(t.TempDir(), "profiles.hcl")
	if err := os.WriteFile(pfile, []byte(`profile "own" {
  table "jobs" { filter = "owner == device.user" }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--profiles", pfile)
	d := startNode(t, "device", "--hub", hub.sync, "--hub-api", hub.api, "--pull-interval", "1h")
	ctx := context.Background()
	st, err := d.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pfile, []byte(fmt.Sprintf(`profile "own" {
  table "jobs" { filter = "owner == device.user" }
}
device %q {
  profile    = "own"
  attributes = { user = "alice" }
}
`, st.Node)), 0o644); err != nil {
		t.Fatal(err)
	}
	hub.mustCLI("profile", "reload")
	hub.mustCLI("put", "jobs", "j1", "owner=alice", "title=mine")
	hub.mustCLI("put", "jobs", "j2", "owner=bob", "title=not mine")
	eventually(t, "the device holds its own job", func() error {
		d.mustCLI("sync")
		_, err := d.client().Get(ctx, "jobs", "j1")
		return err
	})
	outside := func() {
		t.Helper()
		code, body := httpDo(t, d, "GET", "/v1/tables/jobs/records/j2", "")
		if code != 404 {
			t.Fatalf("local read of a job outside the profile: %d %s", code, body)
		}
		if p, err := d.client().List(ctx, "jobs", "", 0); err != nil || len(p.Records) != 1 || p.Records[0].ID != "j1" {
			t.Fatalf("local list: %+v %v", p, err)
		}
	}
	outside()
	r, err := d.client().GetOnline(ctx, "jobs", "j2")
	if err != nil || fieldsOf(t, &r.Record) != `{"owner":"bob","title":"not mine"}` {
		t.Fatalf("online read outside the profile: %+v %v", r, err)
	}
	if p, err := d.client().ListOnline(ctx, "jobs", "", 0); err != nil || len(p.Records) != 2 {
		t.Fatalf("online list: %+v %v", p, err)
	}
	outside()
	d.mustCLI("sync")
	outside()
}
