package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/api"
)

// TestLiveQueryRestrictedReaderResumes: a node restricted by a hub's read
// rules long-polls a live query on the hub's API; each poll resumes
// from the last one with what changed, narrowed (a field it may not
// read never shows, a record it may not read never appears), not the
// whole result again.
func TestLiveQueryRestrictedReaderResumes(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "hub.hcl")
	if err := os.WriteFile(conf, []byte(`
permission "techs" {
  nodes = ["0d00000000000000/8"]
  read  = ["jobs:status", "jobs:prio"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startNode(t, "hub", "--role", "hub", "--config", conf, "--gossip-addr", "off")
	hub.mustCLI("put", "jobs", "j1", "status=open", "prio=1", "notes=secret-1")
	hub.mustCLI("put", "jobs", "j2", "status=open", "prio=2", "notes=secret-2")
	poll := func(last string) api.WatchPage {
		t.Helper()
		u := "http://" + hub.api + "/v1/tables/jobs/records?watch=true&where=" + url.QueryEscape("status != 'x'") + "&timeout=10s"
		if last != "" {
			u += "&last_event_id=" + url.QueryEscape(last)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Replicad-Node", "0d00000000000001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("poll: %d %s", resp.StatusCode, b)
		}
		if strings.Contains(string(b), "secret") || strings.Contains(string(b), "notes") {
			t.Fatalf("a field it may not read: %s", b)
		}
		var p api.WatchPage
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := poll("")
	if len(first.Events) != 1 || first.Events[0].Type != "result" || len(first.Events[0].Records) != 2 {
		t.Fatalf("first poll: %+v", first)
	}
	hub.mustCLI("put", "jobs", "j1", "status=done", "notes=secret-3")
	p := poll(first.LastEventID)
	var got []string
	for _, ev := range p.Events {
		got = append(got, fmt.Sprint(ev.Type, " ", ev.RecordID))
	}
	if len(p.Events) != 1 || p.Events[0].Type != "change" || p.Events[0].RecordID != "j1" || string(p.Events[0].Record.Fields["status"]) != `"done"` {
		t.Fatalf("poll after a change: %v, want j1 changed", got)
	}
}
