package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
)

// TestQueryHTTP: through the binary's API, a query (where, order, limit,
// then the cursor), a bad one (400 naming the parameter and the
// offset), drafts laid over the records with draft=true, a live query
// over server-sent events (the result, then an add) and as a long poll,
// and an agent that stops promptly with a stream open.
func TestQueryHTTP(t *testing.T) {
	d := startNode(t, "d")
	for _, rec := range [][]string{
		{"j1", "owner=ann", "prio:=2"}, {"j2", "owner=bob", "prio:=1"}, {"j3", "owner=ann", "prio:=3"}, {"j4", "owner=ann", "prio:=1"},
	} {
		d.mustCLI(append([]string{"put", "jobs"}, rec...)...)
	}
	get := func(path string, out any) (int, string) {
		t.Helper()
		code, body := httpDo(t, d, "GET", path, "")
		if code == 200 && out != nil {
			if err := json.Unmarshal([]byte(body), out); err != nil {
				t.Fatalf("%s: %v in %s", path, err, body)
			}
		}
		return code, body
	}
	q := "/v1/tables/jobs/records?" + url.Values{"where": {"owner == 'ann'"}, "order": {"-prio"}, "limit": {"2"}}.Encode()
	var p1, p2 api.Page
	if code, body := get(q, &p1); code != 200 || len(p1.Records) != 2 || p1.Records[0].ID != "j3" || p1.Records[1].ID != "j1" || p1.Next == "" {
		t.Fatalf("page 1: %d %s", code, body)
	}
	if code, body := get(q+"&cursor="+url.QueryEscape(p1.Next), &p2); code != 200 || len(p2.Records) != 1 || p2.Records[0].ID != "j4" || p2.Next != "" {
		t.Fatalf("page 2: %d %s", code, body)
	}
	if code, body := get("/v1/tables/jobs/records?where="+url.QueryEscape("prio >"), nil); code != 400 || !strings.Contains(body, "where: at offset 6") {
		t.Fatalf("bad where: %d %s", code, body)
	}
	var c api.Count
	if code, body := get("/v1/tables/jobs/records?count=true&where=prio==1", &c); code != 200 || c.Count != 2 {
		t.Fatalf("count: %d %s", code, body)
	}
	if code, body := httpDo(t, d, "PUT", "/v1/tables/jobs/records/j2?draft=true", `{"fields":{"owner":"ann"}}`); code != 200 {
		t.Fatalf("draft: %d %s", code, body)
	}
	if get("/v1/tables/jobs/records?count=true&where="+url.QueryEscape("owner == 'ann'"), &c); c.Count != 3 {
		t.Fatalf("without draft=true: %d", c.Count)
	}
	if get("/v1/tables/jobs/records?draft=true&count=true&where="+url.QueryEscape("owner == 'ann'"), &c); c.Count != 4 {
		t.Fatalf("draft=true: %d", c.Count)
	}

	// Long poll: the result at once.
	var wp api.WatchPage
	if code, body := get("/v1/tables/jobs/records?watch=true&where=prio>=3", &wp); code != 200 || len(wp.Events) != 1 || wp.Events[0].Type != "result" || len(wp.Events[0].Records) != 1 {
		t.Fatalf("long poll: %d %s", code, body)
	}
	// Server-sent events: the result, then an add.
	req, _ := http.NewRequest("GET", "http://"+d.api+"/v1/tables/jobs/records?watch=true&where=prio>=3", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := func() (event, data string) {
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && event != "":
				return event, data
			}
		}
		return "", ""
	}
	if ev, data := next(); ev != "result" || !strings.Contains(data, `"id":"j3"`) {
		t.Fatalf("first event %s %s", ev, data)
	}
	d.mustCLI("put", "jobs", "j5", "prio:=5")
	if ev, data := next(); ev != "add" || !strings.Contains(data, `"record_id":"j5"`) {
		t.Fatalf("second event %s %s", ev, data)
	}
	// The agent stops promptly with the stream open, which ends.
	start := time.Now()
	d.stop()
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the agent took %s to stop with a live query open", took)
	}
	if ev, _ := next(); ev != "" {
		t.Fatalf("an event after the stop: %s", ev)
	}
}
