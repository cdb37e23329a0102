package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/replicad/replicad/api"
)

// queryHubConfig declares, in the hub's config file, an index of jobs
// and a view whose where clause reads the asking device's attributes.
const queryHubConfig = `
role = "hub"
table "jobs" {
  index "by_owner_prio" {
    fields = ["owner", "prio"]
  }
}
view "my_open" {
  table = "jobs"
  where = "owner == device.user && status == 'open'"
  order = ["-prio"]
}
`

// queryCluster is a hub declaring queryHubConfig and two devices, a
// (device.user alice) and b (bob), each holding every job.
type queryCluster struct{ hub, a, b *node }

// startQueryCluster starts the cluster, writes jobs on both devices
// (j1-j4 on a, j5-j8 on b), syncs them everywhere and waits for the
// index to be built on a.
func startQueryCluster(t *testing.T) *queryCluster {
	dir := t.TempDir()
	cfg, pfile := filepath.Join(dir, "hub.hcl"), filepath.Join(dir, "profiles.hcl")
	const profile = "profile \"field\" {\n  table \"jobs\" {}\n}\n"
	for f, src := range map[string]string{cfg: queryHubConfig, pfile: profile} {
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &queryCluster{hub: startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--config", cfg, "--profiles", pfile)}
	c.a = startNode(t, "a", "--hub", c.hub.sync, "--pull-interval", "1h")
	c.b = startNode(t, "b", "--hub", c.hub.sync, "--pull-interval", "1h")
	ctx := context.Background()
	var devices strings.Builder
	for _, d := range []struct {
		n    *node
		user string
	}{{c.a, "alice"}, {c.b, "bob"}} {
		st, err := d.n.client().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&devices, "device %q {\n  profile = \"field\"\n  attributes = { user = %q }\n}\n", st.Node, d.user)
	}
	if err := os.WriteFile(pfile, []byte(profile+devices.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.hub.mustCLI("profile", "reload")
	for _, w := range []struct {
		n                 *node
		id, owner, status string
		prio              int
	}{
		{c.a, "j1", "alice", "open", 3}, {c.a, "j2", "alice", "open", 1}, {c.a, "j3", "bob", "open", 5}, {c.a, "j4", "alice", "done", 4},
		{c.b, "j5", "alice", "open", 2}, {c.b, "j6", "bob", "open", 2}, {c.b, "j7", "alice", "open", 5}, {c.b, "j8", "alice", "done", 2},
	} {
		w.n.mustCLI("put", "jobs", w.id, "owner="+w.owner, "status="+w.status, fmt.Sprintf("prio:=%d", w.prio))
	}
	for _, n := range []*node{c.a, c.b, c.a} {
		n.mustCLI("sync")
	}
	for _, n := range []*node{c.a, c.b} {
		eventually(t, n.name+" holds the 8 jobs and the built index", func() error {
			st, err := n.client().Status(ctx)
			if err != nil {
				return err
			}
			if len(st.Indexes) != 1 || st.Indexes[0].Name != "by_owner_prio" || !st.Indexes[0].Built ||
				!reflect.DeepEqual(st.Indexes[0].Fields, []string{"owner", "prio"}) {
				return fmt.Errorf("indexes %+v", st.Indexes)
			}
			if got := ids(t, n, "jobs"); len(got) != 8 {
				return fmt.Errorf("jobs %v", got)
			}
			return nil
		})
	}
	return c
}

// pageIDs is the ids of a page of records.
func pageIDs(p api.Page) []string {
	out := []string{}
	for _, r := range p.Records {
		out = append(out, r.ID)
	}
	return out
}

// TestQueriesAndViews: the query language, indexes and views through
// the real binary, declared in the hub's config and used on a device:
// replicad query with where, order and limit pages through the result
// with cursors (each record once, in order), explains a plan naming the
// index, counts; replicad views lists the view with each device's own
// count (device.user); a live view on a (replicad view --watch, over
// server-sent events) sees b's changes once synced and stops with exit
// 0 on an interrupt; bad input is a 400 naming the option and offset
// through HTTP and one line with exit 2 through the CLI.
func TestQueriesAndViews(t *testing.T) {
	c := startQueryCluster(t)
	a, b := c.a, c.b
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
	}

	// Pages of 2 of alice's jobs, highest prio first, ties by id.
	// walk pages through a query with the CLI, by its cursors, and
	// returns the ids in page order (at most limit a page, maxPages pages).
	walk := func(limit, maxPages int, args ...string) []string {
		t.Helper()
		var got []string
		cursor := ""
		for i := 0; ; i++ {
			args := append([]string{"query", "jobs"}, args...)
			args = append(args, "--limit", strconv.Itoa(limit))
			if cursor != "" {
				args = append(args, "--cursor", cursor)
			}
			var p api.Page
			decode(a.mustCLI(args...), &p)
			if len(p.Records) > limit || i >= maxPages {
				t.Fatalf("page %d: %+v", i, p)
			}
			got = append(got, pageIDs(p)...)
			if cursor = p.Next; cursor == "" {
				return got
			}
		}
	}
	got := walk(2, 5, "--where", "owner == 'alice'", "--order", "-prio")
	if want := []string{"j7", "j4", "j1", "j5", "j8", "j2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("alice's jobs by -prio, paged by 2: %v, want %v", got, want)
	}

	// Without a where clause too, the pages are a query's (cursors).
	got = walk(3, 4)
	if want := []string{"j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8"}; !reflect.DeepEqual(got, want) {
		t.Errorf("every job, paged by 3: %v, want %v", got, want)
	}

	// The plan: equality on owner and a range on prio walk the index.
	var p api.Page
	decode(a.mustCLI("query", "jobs", "--where", "owner == 'alice' && prio >= 3", "--order", "-prio", "--explain", "--fields", "prio"), &p)
	if p.Plan == nil || p.Plan.Index == nil || *p.Plan.Index != "by_owner_prio" || p.Plan.Examined > 3 {
		t.Errorf("explain: plan %+v, want the index by_owner_prio and at most 3 records examined", p.Plan)
	}
	if ids := pageIDs(p); !reflect.DeepEqual(ids, []string{"j7", "j4", "j1"}) || len(p.Records[0].Fields) != 1 || string(p.Records[0].Fields["prio"]) != "5" {
		t.Errorf("explained query: %v %+v", ids, p.Records)
	}
	var n api.Count
	decode(a.mustCLI("query", "jobs", "--where", "status == 'open'", "--count"), &n)
	if n.Count != 6 {
		t.Errorf("count of open jobs: %d, want 6", n.Count)
	}

	// The view, with each device's own attributes.
	for _, d := range []struct {
		n    *node
		want int
		ids  []string
	}{{a, 4, []string{"j7", "j1", "j5", "j2"}}, {b, 2, []string{"j3", "j6"}}} {
		var vl api.ViewList
		decode(d.n.mustCLI("views"), &vl)
		if len(vl.Views) != 1 || vl.Views[0].Name != "my_open" || vl.Views[0].Table != "jobs" || vl.Views[0].Count != d.want || vl.Views[0].Error != "" {
			t.Errorf("%s: views %+v, want my_open with %d records", d.n.name, vl.Views, d.want)
		}
		var vp api.Page
		decode(d.n.mustCLI("view", "my_open"), &vp)
		if ids := pageIDs(vp); !reflect.DeepEqual(ids, d.ids) {
			t.Errorf("%s: view my_open: %v, want %v", d.n.name, ids, d.ids)
		}
	}

	// A live view on a sees b's changes once synced.
	watch := exec.Command(binary, "view", "my_open", "--watch")
	watch.Env = append(os.Environ(), "REPLICAD_ADDR="+a.api)
	var stderr lockedBuffer
	watch.Stderr = &stderr
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer watch.Process.Kill()
	events := make(chan api.WatchEvent, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev api.WatchEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("watch printed %q: %v", sc.Text(), err)
				return
			}
			events <- ev
		}
	}()
	next := func(what string) api.WatchEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the watch ended before %s: %s", what, stderr.String())
			}
			return ev
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s from the watch in 15s: %s", what, stderr.String())
		}
		return api.WatchEvent{}
	}
	if ev := next("result"); ev.Type != "result" || !reflect.DeepEqual(pageIDs(api.Page{Records: ev.Records}), []string{"j7", "j1", "j5", "j2"}) || ev.ID == "" {
		t.Fatalf("first event %+v, want the result j7 j1 j5 j2 with an id", ev)
	}
	b.mustCLI("put", "jobs", "j9", "owner=alice", "status=open", "prio:=7")
	b.mustCLI("put", "jobs", "j5", "status=done")
	b.mustCLI("put", "jobs", "j6", "prio:=8") // bob's: not in a's view
	b.mustCLI("sync")
	a.mustCLI("sync")
	seen := map[string]string{}
	for len(seen) < 2 {
		ev := next("b's changes")
		switch {
		case ev.Type == "add" && ev.RecordID == "j9" && ev.Record != nil && string(ev.Record.Fields["prio"]) == "7":
		case ev.Type == "remove" && ev.RecordID == "j5":
		default:
			t.Fatalf("unexpected event %+v (want add j9 and remove j5)", ev)
		}
		seen[ev.RecordID] = ev.Type
	}
	watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Errorf("replicad view --watch after an interrupt: %v (stderr %q), want exit 0", err, stderr.String())
	}

	// Bad input: through HTTP a 400 naming the option and the offset,
	// through the CLI one line and exit 2. The foreign cursor is a
	// page's of another query.
	var first api.Page
	decode(a.mustCLI("query", "jobs", "--where", "owner == 'alice'", "--limit", "1"), &first)
	if first.Next == "" {
		t.Fatal("no cursor after the first page")
	}
	for _, bad := range []struct {
		params url.Values
		flags  []string
		want   string
	}{
		{url.Values{"where": {"prio >"}}, []string{"--where", "prio >"}, "where: at offset 6"},
		{url.Values{"order": {"prio,now"}}, []string{"--order", "prio,now"}, "order: at offset 5"},
		{url.Values{"where": {"owner == 'bob'"}, "cursor": {first.Next}}, []string{"--where", "owner == 'bob'", "--cursor", first.Next}, "cursor: at offset"},
		{url.Values{"where": {""}, "limit": {"-1"}}, []string{"--limit", "-1"}, "limit: at offset 0"},
	} {
		resp, err := http.Get("http://" + a.api + "/v1/tables/jobs/records?" + bad.params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e api.Error
		if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Error, bad.want) {
			t.Errorf("GET records?%s: %d %s; want 400 %q...", bad.params.Encode(), resp.StatusCode, body, bad.want)
		}
		out, errOut, code := a.cli(append([]string{"query", "jobs"}, bad.flags...)...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "replicad: query: "+bad.want) {
			t.Errorf("replicad query jobs %q: exit %d, stdout %q, stderr %q; want exit 2 and one line %q", bad.flags, code, out, errOut, bad.want)
		}
	}
	if _, errOut, code := a.cli("view", "nosuch"); code == 0 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("replicad view nosuch: exit %d, stderr %q", code, errOut)
	}
}

// TestViewsPanelInBrowser: a device's status page lists the hub's view
// with the device's own count, and the index with its build.
func TestViewsPanelInBrowser(t *testing.T) {
	needChromium(t)
	c := startQueryCluster(t)
	bctx, thrownp := headlessChromium(t)
	var views, indexes []string
	err := chromedp.Run(bctx,
		chromedp.Navigate("http://"+c.a.api+"/"),
		chromedp.WaitVisible("#views tr.view", chromedp.ByQuery),
		chromedp.WaitVisible("#indexes tr.index", chromedp.ByQuery),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#views tr.view")).map(r => r.innerText)`, &views),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#indexes tr.index")).map(r => r.innerText)`, &indexes),
	)
	if err != nil {
		t.Fatalf("loading a's page: %v (exceptions: %v)", err, *thrownp)
	}
	if want := []string{"my_open\tjobs\towner == device.user && status == 'open'\t-prio\t4"}; !reflect.DeepEqual(views, want) {
		t.Errorf("views panel %q, want %q", views, want)
	}
	if want := []string{"by_owner_prio\tjobs\towner, prio\tbuilt"}; !reflect.DeepEqual(indexes, want) {
		t.Errorf("indexes panel %q, want %q", indexes, want)
	}
	// A change in the view reaches the panel at its next refresh.
	c.a.mustCLI("put", "jobs", "j10", "owner=alice", "status=open", "prio:=1")
	if err := chromedp.Run(bctx, chromedp.Poll(`document.querySelector("#views tr.view").innerText.endsWith("\t5")`, nil, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the views panel did not count the new job: %v", err)
	}
	if thrown := *thrownp; len(thrown) > 0 {
		t.Errorf("uncaught exceptions: %v", thrown)
	}
}
