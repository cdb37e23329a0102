package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/replicad/replicad/client"
)

// attackPage is served from another loopback origin: it tries, the ways a
// page can without the agent's consent, to take the device offline, reset
// its replica and write a record, then sets the title to "done".
const attackPage = `<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" target="sink"><input name='{"online":false,"x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
const api = "API";
const tries = [
  fetch(api + "/v1/connectivity", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"online":false}'}),
  fetch(api + "/v1/connectivity", {method: "POST", mode: "no-cors", body: new Blob(['{"online":false}'])}),
  fetch(api + "/v1/reset", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: '{"confirm":true}'}),
  fetch(api + "/v1/reset", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"confirm":true}'}),
  fetch(api + "/v1/tables/jobs/records/evil", {method: "PUT", headers: {"Content-Type": "application/json"}, body: '{"fields":{"x":1}}'}),
  fetch(api + "/v1/tables/jobs/records/evil", {method: "PUT", mode: "no-cors", body: '{"fields":{"x":1}}'}),
  fetch(api + "/v1/sync", {method: "POST", mode: "no-cors"}),
  fetch(api + "/v1/connectivity", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"online":false}'}),
];
const f = document.getElementById("f");
f.action = api + "/v1/connectivity";
f.submit();
Promise.allSettled(tries).then(rs => { window.results = rs.map(r => r.status); setTimeout(() => { document.title = "done"; }, 500); });
</script></body></html>`

// allowedPage takes the device offline with a CORS request (preflight,
// then a JSON POST).
const allowedPage = `<!doctype html><html><body><script>
fetch("API/v1/connectivity", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"online":false}'})
  .then(r => r.json()).then(j => { document.title = "done " + JSON.stringify(j); }, e => { document.title = "done " + e; });
</script></body></html>`

// TestCrossSiteRequestsRefused drives a real chromium: a page on another
// loopback origin tries to take the device offline, reset it and write
// (fetch in no-cors and cors modes, a text/plain form): every attempt is
// refused and nothing changes. A page reached under a foreign host name
// (what DNS rebinding yields) gets no data. The status page's own buttons
// still work, and an origin given with --api-cors-origin may write.
func TestCrossSiteRequestsRefused(t *testing.T) {
	needChromium(t)
	ctx := context.Background()
	// The attacker's page, on another loopback origin.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evilOrigin := "http://" + ln.Addr().String()
	allowed := startNode(t, "allowed", "--api-cors-origin", evilOrigin)
	d := startNode(t, "dev")
	c := d.client()
	for i := 0; i < 5; i++ {
		if _, err := c.Put(ctx, "jobs", fmt.Sprintf("unsynced%d", i), map[string]json.RawMessage{"n": json.RawMessage(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/allowed" {
			io.WriteString(w, strings.Replace(allowedPage, "API", "http://"+allowed.api, 1))
			return
		}
		io.WriteString(w, strings.Replace(attackPage, "API", "http://"+d.api, 1))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// rebind.test resolves to loopback: a DNS-rebinding page's name.
		chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"),
		chromedp.UserDataDir(browserProfile(t)),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 45*time.Second)
	defer cancelTimeout()

	var results []string
	if err := chromedp.Run(bctx,
		chromedp.Navigate(evilOrigin+"/"),
		chromedp.Poll(`document.title === "done"`, nil, chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Evaluate(`window.results`, &results),
	); err != nil {
		t.Fatalf("the attack page: %v", err)
	}
	t.Logf("the page's fetches settled: %v", results)
	after, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Online || after.Node != before.Node {
		t.Errorf("after the page: online %v node %s, before online %v node %s", after.Online, after.Node, before.Online, before.Node)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Get(ctx, "jobs", fmt.Sprintf("unsynced%d", i)); err != nil {
			t.Errorf("unsynced%d after the page: %v", i, err)
		}
	}
	if _, err := c.Get(ctx, "jobs", "evil"); !client.IsNotFound(err) {
		t.Errorf("the page wrote jobs/evil: %v", err)
	}
	if !strings.Contains(d.log.String(), "cross-site request refused") {
		t.Errorf("no refusal in the agent's log")
	}

	// DNS rebinding: the agent's address under a foreign name.
	var body string
	rebound := fmt.Sprintf("http://rebind.test:%s/v1/status", strings.Split(d.api, ":")[1])
	if err := chromedp.Run(bctx, chromedp.Navigate(rebound), chromedp.Text("body", &body, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, before.Node) || !strings.Contains(body, "does not name this API") {
		t.Errorf("%s answered %q: want a refusal without data", rebound, body)
	}

	// The status page's own buttons: offline, then online again.
	if err := chromedp.Run(bctx, chromedp.Navigate("http://"+d.api+"/"), chromedp.WaitVisible("#toggle", chromedp.ByQuery), chromedp.Click("#toggle", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the page's Go offline button works", func() error {
		if st, err := c.Status(ctx); err != nil || st.Online {
			return fmt.Errorf("online %v, %v", st != nil && st.Online, err)
		}
		return nil
	})
	if err := chromedp.Run(bctx,
		chromedp.Poll(`document.querySelector("#toggle").innerText === "Go online"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Click("#toggle", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the page's Go online button works", func() error {
		if st, err := c.Status(ctx); err != nil || !st.Online {
			return fmt.Errorf("online %v, %v", st != nil && st.Online, err)
		}
		return nil
	})

	// An origin allowed with --api-cors-origin may make state changes:
	// the same page takes that agent offline.
	var title string
	if err := chromedp.Run(bctx,
		chromedp.Navigate(evilOrigin+"/allowed"),
		chromedp.Poll(`document.title.startsWith("done")`, nil, chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Title(&title),
	); err != nil {
		t.Fatal(err)
	}
	t.Logf("the allowed origin's request: %s", title)
	if st, err := allowed.client().Status(ctx); err != nil || st.Online {
		t.Errorf("the agent allowing %s: online %v, %v; want offline", evilOrigin, st != nil && st.Online, err)
	}
}
