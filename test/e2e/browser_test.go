package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; .ci/run installs it (ensure_chromium).
const chromiumPath = "/usr/bin/chromium"

// TestStatusPageInBrowser loads the status page of a device in a real
// headless chromium, checks what it shows (offline state, pending outbound
// writes, the hub with its last sync and clock skew, per-table last sync),
// resolves a conflict by clicking a candidate, checks through the API that
// the record changed, then goes online and syncs from the page. Any console
// error, uncaught exception or request to another origin fails the test.
func TestStatusPageInBrowser(t *testing.T) {
	needChromium(t)
	start := time.Now()
	// The hub's clock runs 1.5 s ahead, so the device shows a clock skew.
	const hubSkew = 1500
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--clock-offset", fmt.Sprintf("%dms", hubSkew), "--policy", "jobs=manual")
	d1 := startNode(t, "d1", "--hub", hub.sync)
	d2 := startNode(t, "d2", "--hub", hub.sync)
	ctx := context.Background()
	c1, c2 := d1.client(), d2.client()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) map[string]json.RawMessage {
		b, _ := json.Marshal(s)
		return map[string]json.RawMessage{"title": b}
	}

	// A concurrent edit of one field: d1 (offline) and d2 each overwrite
	// the title both had seen; after syncing, d1 holds both candidates.
	must(c1.Put(ctx, "jobs", "j1", str("base")))
	must(c1.Sync(ctx))
	must(c2.Sync(ctx))
	if err := c1.SetOnline(ctx, false); err != nil {
		t.Fatal(err)
	}
	must(c1.Put(ctx, "jobs", "j1", str("from-d1")))
	must(c2.Put(ctx, "jobs", "j1", str("from-d2")))
	must(c2.Sync(ctx))
	if err := c1.SetOnline(ctx, true); err != nil {
		t.Fatal(err)
	}
	must(c1.Sync(ctx))
	cs, err := c1.Conflicts(ctx)
	if err != nil || len(cs) != 1 || len(cs[0].Candidates) != 2 {
		t.Fatalf("d1 conflicts: %+v, %v; want one field with two candidates", cs, err)
	}
	pick := -1
	for i, c := range cs[0].Candidates {
		if string(c.Value) == `"from-d1"` {
			pick = i
		}
	}
	if pick < 0 {
		t.Fatalf("no candidate from-d1 in %+v", cs[0].Candidates)
	}
	// Once d1 knows the hub holds its writes, offline again with one write
	// the hub has not got: the page must say offline and one pending
	// outbound write.
	eventually(t, "d1 knows its writes delivered", func() error {
		st, err := c1.Status(ctx)
		if err == nil && st.PendingOutbound != 0 {
			err = fmt.Errorf("pending outbound %d", st.PendingOutbound)
		}
		return err
	})
	if err := c1.SetOnline(ctx, false); err != nil {
		t.Fatal(err)
	}
	must(c1.Put(ctx, "notes", "n1", str("written offline")))

	pageURL := "http://" + d1.api + "/"
	checkNoExternalAssets(t, pageURL)

	// The browser.
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1200, 900),
		chromedp.UserDataDir(browserProfile(t)),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 45*time.Second)
	defer cancelTimeout()

	var (
		mu       sync.Mutex
		problems []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	chromedp.ListenTarget(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				report("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			report("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				report("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			u, err := url.Parse(ev.Request.URL)
			if err != nil || u.Scheme != "http" || u.Host != d1.api {
				report("request to another origin: %s", ev.Request.URL)
			}
		}
	})

	// text reads an element's innerText; sel is a CSS selector.
	// text reads sel's text in one evaluation: the page rebuilds its
	// tables at every refresh, so a node found first and read after may
	// be gone ("No node with given id found"). "" when there is none.
	text := func(sel string) string {
		t.Helper()
		var s string
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : ""; })()`, sel)
		if err := chromedp.Run(bctx, chromedp.Evaluate(js, &s)); err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	// waitText polls until sel's text satisfies ok (the page refreshes
	// itself every 3 s and after every action).
	waitText := func(what, sel string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := text(sel)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s shows %q", what, sel, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// screenshot saves the whole page as evidence. The test's temporary
	// directory is removed when it ends; set REPLICAD_E2E_SCREENSHOT_DIR
	// to keep the screenshots.
	shots := os.Getenv("REPLICAD_E2E_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	screenshot := func(name string) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(bctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (%d bytes): %s", len(png), path)
	}

	button := fmt.Sprintf(`#conflicts button[data-table="jobs"][data-id="j1"][data-field="title"][data-pick="%d"]`, pick)
	if err := chromedp.Run(bctx,
		network.Enable(),
		log.Enable(),
		chromedp.Navigate(pageURL),
		chromedp.WaitVisible(button, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("loading %s: %v", pageURL, err)
	}
	t.Logf("page loaded with the conflict shown after %v", time.Since(start).Round(time.Millisecond))

	// What the page shows.
	if s := text("#state"); s != "offline" {
		t.Errorf("state badge %q, want offline", s)
	}
	if s := text("#toggle"); s != "Go online" {
		t.Errorf("toggle button %q, want Go online", s)
	}
	// syncButton reads whether Sync now is disabled, and its tooltip.
	syncButton := func() (disabled bool, title string) {
		t.Helper()
		var b struct {
			Disabled bool   `json:"disabled"`
			Title    string `json:"title"`
		}
		if err := chromedp.Run(bctx, chromedp.Evaluate(`({disabled: document.getElementById("sync").disabled, title: document.getElementById("sync").title})`, &b)); err != nil {
			t.Fatalf("reading the Sync now button: %v", err)
		}
		return b.Disabled, b.Title
	}
	if disabled, title := syncButton(); !disabled || !strings.Contains(title, "offline") {
		t.Errorf("Sync now while offline: disabled %v, tooltip %q; want disabled with a tooltip saying why", disabled, title)
	}
	if s := text("#sum-pending"); !regexp.MustCompile(`^pending outbound\s+1 local write`).MatchString(s) {
		t.Errorf("pending outbound row %q, want 1", s)
	}
	if s := text("#sum-conflicts"); !regexp.MustCompile(`^conflicts\s+1$`).MatchString(s) {
		t.Errorf("conflicts row %q, want 1", s)
	}
	if s := text("#sum-hubs"); !strings.Contains(s, hub.sync) {
		t.Errorf("hubs row %q, want %s", s, hub.sync)
	}
	peer := text("#peers tr.peer")
	cells := strings.Split(peer, "\t")
	if len(cells) != 7 || cells[0] != hub.sync || cells[2] != "hub" || !strings.Contains(cells[3], "UTC (") {
		t.Errorf("peer row %q: want the hub %s with its last successful sync", peer, hub.sync)
	} else {
		ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(cells[6], "+"), " ms"))
		if err != nil || ms < hubSkew-1000 || ms > hubSkew+1000 {
			t.Errorf("peer clock skew %q, want about +%d ms", cells[6], hubSkew)
		}
	}
	for table, pol := range map[string]string{"jobs": "manual", "notes": "lww"} {
		found := false
		var rows []string
		if err := chromedp.Run(bctx, chromedp.Evaluate(`Array.from(document.querySelectorAll("#tables tr.table")).map(r => r.innerText)`, &rows)); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if strings.HasPrefix(r, table+"\t"+pol+"\t") && strings.Contains(r, "UTC (") {
				found = true
			}
		}
		if !found {
			t.Errorf("tables %q: want %s with its last sync", rows, table)
		}
	}
	if s := text("#errors"); !strings.Contains(s, "no sync errors") {
		t.Errorf("sync errors table %q, want none", s)
	}

	screenshot("status-page-before.png")

	// Resolve the conflict by clicking the from-d1 candidate.
	if err := chromedp.Run(bctx, chromedp.Click(button, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitText("conflict list after the click", "#conflicts", func(s string) bool { return strings.Contains(s, "no conflicts") })
	r, err := c1.Get(ctx, "jobs", "j1")
	if err != nil || fieldsOf(t, r) != `{"title":"from-d1"}` || len(r.Conflicts) != 0 {
		t.Fatalf("j1 on d1 after the click: %+v, %v; want title from-d1 and no conflict", r, err)
	}
	if cs, err := c1.Conflicts(ctx); err != nil || len(cs) != 0 {
		t.Errorf("d1 conflicts after the click: %+v, %v", cs, err)
	}

	// Back online and sync, from the page's buttons; the resolution and
	// the offline write reach the hub.
	if err := chromedp.Run(bctx, chromedp.Click("#toggle", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitText("state after Go online", "#state", func(s string) bool { return s == "online" })
	if disabled, title := syncButton(); disabled || strings.Contains(title, "offline") {
		t.Errorf("Sync now while online: disabled %v, tooltip %q; want it enabled", disabled, title)
	}
	if err := chromedp.Run(bctx, chromedp.Click("#sync", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitText("pending outbound after Sync now", "#sum-pending", func(s string) bool {
		return regexp.MustCompile(`\s0 local writes`).MatchString(s)
	})
	eventually(t, "the resolution reaches the hub", func() error {
		r, err := hub.client().Get(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if got := fieldsOf(t, r); got != `{"title":"from-d1"}` || len(r.Conflicts) != 0 {
			return fmt.Errorf("hub j1 = %s, conflicts %v", got, r.Conflicts)
		}
		_, err = hub.client().Get(ctx, "notes", "n1")
		return err
	})
	if s := text("#msg"); s != "" {
		t.Errorf("the page shows an error: %q", s)
	}

	screenshot("status-page-after.png")

	// Let the events of the last actions arrive before judging them.
	if err := chromedp.Run(bctx, chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// checkNoExternalAssets fetches the page and fails on any absolute URL
// (http://, https:// or protocol-relative //host) in it: the page must work
// on a device with no network beyond its own agent.
func checkNoExternalAssets(t *testing.T, pageURL string) {
	t.Helper()
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %s %s", pageURL, resp.Status, resp.Header.Get("Content-Type"))
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+[a-z0-9]`).FindAll(body, -1); len(m) > 0 {
		var found []string
		for _, b := range m {
			found = append(found, string(b))
		}
		t.Errorf("the status page references other hosts: %q", found)
	}
	for _, attr := range regexp.MustCompile(`(?i)\b(src|href)\s*=\s*"([^"]*)"`).FindAllSubmatch(body, -1) {
		if v := string(attr[2]); v != "data:," && !strings.HasPrefix(v, "/") {
			t.Errorf("the status page loads %s=%q", attr[1], v)
		}
	}
}
