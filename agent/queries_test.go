package agent

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/agent/config"
)

// TestQueriesOnlineReadPermissions: a device's query with online=true
// goes to the hub's API with its parameters, where the device's read
// rules judge it: a field it may not read named in where is a 403, the
// records and fields it may not read are not in the page nor the count.
func TestQueriesOnlineReadPermissions(t *testing.T) {
	c := newReadCluster(t)
	hub, tech := c.hub, c.tech
	hub.write(t, "jobs", "j1", "status", "open")
	hub.write(t, "jobs", "j1", "notes", "gate code 1234")
	hub.write(t, "jobs", "j2", "status", "done")
	q := func(params string) (int, string) {
		return getOnline(t, tech, "/v1/tables/jobs/records?online=true&"+params)
	}
	code, body := q("where=" + url.QueryEscape("status == 'open'"))
	if code != http.StatusOK || !strings.Contains(body, `"id":"j1"`) || strings.Contains(body, `"id":"j2"`) || strings.Contains(body, "gate code") || !strings.Contains(body, `"online":true`) {
		t.Fatalf("online query: %d %s", code, body)
	}
	if code, body := q("where=" + url.QueryEscape("notes != ''")); code != http.StatusForbidden || !strings.Contains(body, `\"notes\"`) {
		t.Fatalf("online query naming notes: %d %s, want 403 naming the field", code, body)
	}
	if code, body := q("count=true&where=" + url.QueryEscape("status != ''")); code != http.StatusOK || !strings.Contains(body, `"count":2`) {
		t.Fatalf("online count: %d %s", code, body)
	}
	if code, body := q("where=" + url.QueryEscape("status ==")); code != http.StatusBadRequest || !strings.Contains(body, "where: at offset") {
		t.Fatalf("online bad query: %d %s", code, body)
	}
	// Locally the hub answers the same query unrestricted.
	if code, body := getOnline(t, hub, "/v1/tables/jobs/records?where="+url.QueryEscape("notes != ''")); code != http.StatusOK || !strings.Contains(body, "gate code") {
		t.Fatalf("hub query: %d %s", code, body)
	}
}

// TestQueriesEndAtShutdown: an event stream of a live query ends when
// the agent stops, and the stop does not wait for it.
func TestQueriesEndAtShutdown(t *testing.T) {
	a, _ := runAgentStoppable(t, testConfig(t, "device"))
	a.write(t, "jobs", "j1", "status", "open")
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.APIAddr()+"/v1/tables/jobs/records?watch=true&where="+url.QueryEscape("status == 'open'"), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: result" {
	}
	a.write(t, "jobs", "j2", "status", "open")
	for sc.Scan() && sc.Text() != "event: add" {
	}
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()
	start := time.Now()
	a.stop(t)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the agent took %s to stop with a live query open", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream did not end at shutdown")
	}
}

// TestViewsRoutes: a hub's declared views are listed with their counts
// and queried by name; an unknown one is a 404.
func TestViewsRoutes(t *testing.T) {
	cfg := testConfig(t, "hub")
	cfg.Views = []config.ViewConfig{{Name: "open", Table: "jobs", Where: "status == 'open'", Order: []string{"id"}}}
	a, _ := runAgent(t, cfg)
	a.write(t, "jobs", "j1", "status", "open")
	a.write(t, "jobs", "j2", "status", "done")
	if code, body := getOnline(t, a, "/v1/views"); code != http.StatusOK || !strings.Contains(body, `"name":"open"`) || !strings.Contains(body, `"count":1`) {
		t.Fatalf("views: %d %s", code, body)
	}
	if code, body := getOnline(t, a, "/v1/views/open"); code != http.StatusOK || !strings.Contains(body, `"id":"j1"`) || strings.Contains(body, `"id":"j2"`) {
		t.Fatalf("view: %d %s", code, body)
	}
	if code, body := getOnline(t, a, "/v1/views/closed"); code != http.StatusNotFound {
		t.Fatalf("unknown view: %d %s", code, body)
	}
	// online=true asks the hub (whether or not this device has heard of
	// the view yet).
	dcfg := testConfig(t, "device")
	dcfg.Hubs = []string{a.syncAddr()}
	dcfg.HubAPI = a.APIAddr()
	d, _ := runAgent(t, dcfg)
	if code, body := getOnline(t, d, "/v1/views/open?online=true&count=true"); code != http.StatusOK || !strings.Contains(body, `"count":1`) || !strings.Contains(body, `"online":true`) {
		t.Fatalf("online view: %d %s", code, body)
	}
	if code, body := getOnline(t, d, "/v1/views?online=true"); code != http.StatusOK || !strings.Contains(body, `"name":"open"`) {
		t.Fatalf("online views: %d %s", code, body)
	}
}

// TestViewsOnlineReadPermissions: a restricted device reads the hub's
// views through online=true as it reads records: a view of a table it
// may not read is neither listed nor found, a view naming a field it may
// not read is listed with why and refused, and the others count and
// show only what it may read.
func TestViewsOnlineReadPermissions(t *testing.T) {
	c := newReadCluster(t, func(cfg *Config) {
		cfg.Views = []config.ViewConfig{
			{Name: "open", Table: "jobs", Where: "status == 'open'"},
			{Name: "noted", Table: "jobs", Where: "notes != ''"},
			{Name: "pay", Table: "payroll", Where: "true"},
		}
	})
	c.hub.write(t, "jobs", "j1", "status", "open")
	c.hub.write(t, "jobs", "j1", "notes", "gate code 1234")
	c.hub.write(t, "jobs", "j2", "status", "done")
	c.hub.write(t, "payroll", "p1", "amount", "100")
	code, body := getOnline(t, c.tech, "/v1/views?online=true")
	if code != http.StatusOK || !strings.Contains(body, `"name":"open","table":"jobs","where":"status == 'open'","order":[],"count":1`) ||
		!strings.Contains(body, `"name":"noted"`) || !strings.Contains(body, `\"notes\"`) || strings.Contains(body, `"name":"pay"`) {
		t.Fatalf("views listed to the tech: %d %s", code, body)
	}
	if code, body := getOnline(t, c.tech, "/v1/views/open?online=true"); code != http.StatusOK || !strings.Contains(body, `"id":"j1"`) ||
		strings.Contains(body, "gate code") || strings.Contains(body, `"id":"j2"`) {
		t.Fatalf("view open read by the tech: %d %s", code, body)
	}
	if code, body := getOnline(t, c.tech, "/v1/views/noted?online=true"); code != http.StatusForbidden || !strings.Contains(body, `\"notes\"`) {
		t.Fatalf("view noted read by the tech: %d %s, want 403 naming notes", code, body)
	}
	if code, body := getOnline(t, c.tech, "/v1/views/pay?online=true&count=true"); code != http.StatusNotFound {
		t.Fatalf("view pay read by the tech: %d %s, want 404", code, body)
	}
	// The hub reads it whole.
	if code, body := getOnline(t, c.hub, "/v1/views/noted"); code != http.StatusOK || !strings.Contains(body, "gate code") {
		t.Fatalf("view noted on the hub: %d %s", code, body)
	}
}
