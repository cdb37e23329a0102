package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestHubStatusPageDevices: the status page of a hub shows a Devices table
// with every device that synced with it (result, writes each way, pending,
// version), and no "pending outbound" (a hub with no other hub has
// nothing to wait for).
func TestHubStatusPageDevices(t *testing.T) {
	needChromium(t)
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	d1 := startNode(t, "d1", "--hub", hub.sync)
	d2 := startNode(t, "d2", "--hub", hub.sync)
	d1.mustCLI("put", "jobs", "j1", "title=one")
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	bctx, thrownp := headlessChromium(t)
	var rows []string
	var summary, dialed string
	err := chromedp.Run(bctx,
		chromedp.Navigate("http://"+hub.api+"/"),
		chromedp.WaitVisible("#devices tr.device", chromedp.ByQuery),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("#devices tr.device")).map(r => r.innerText)`, &rows),
		chromedp.Text("#summary", &summary, chromedp.ByQuery),
		chromedp.Text("#peers", &dialed, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("loading the hub's page: %v (exceptions: %v)", err, *thrownp)
	}
	if len(rows) != 2 {
		t.Fatalf("devices table rows %q, want d1 and d2", rows)
	}
	for _, r := range rows {
		cells := strings.Split(r, "\t")
		if len(cells) != 11 || cells[1] != "device" || cells[4] != "ok" || cells[5] == "0 / 0" || cells[6] != "0" || cells[9] == "?" {
			t.Errorf("device row %q: want a device, result ok, writes, nothing pending, a version", r)
		}
	}
	if strings.Contains(summary, "pending outbound") {
		t.Errorf("the hub's summary shows pending outbound:\n%s", summary)
	}
	if !strings.Contains(dialed, "dials no other hub") {
		t.Errorf("the hub's dialed-peers table: %q", dialed)
	}
	if thrown := *thrownp; len(thrown) > 0 {
		t.Errorf("uncaught exceptions: %v", thrown)
	}
}
