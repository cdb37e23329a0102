package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSyncErrorKindsInBrowser: the status page shows a rejected change
// as an alarm with its Retry button, and an overridden value without the
// alarm colour and with a quiet "re-apply" instead; the summary counts
// them apart.
func TestSyncErrorKindsInBrowser(t *testing.T) {
	needChromium(t)
	_, tech := syncErrorsSetup(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(browserProfile(t)))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Run(bctx, chromedp.Navigate("http://"+tech.api+"/")); err != nil {
		t.Fatal(err)
	}
	type rowInfo struct {
		Class, Kind, Button, Color string
		Quiet                      bool
	}
	var rows []rowInfo
	var summary map[string]string
	const js = `JSON.stringify({rows: [...document.querySelectorAll("#errors tr.syncerror")].map(r => ({Class: r.className, Kind: r.cells[2].textContent,
		Button: r.querySelector("button").textContent, Quiet: r.querySelector("button").classList.contains("quiet"), Color: getComputedStyle(r.cells[2]).color})),
		summary: {errors: (document.getElementById("sum-errors") || {}).innerText || "", overridden: (document.getElementById("sum-overridden") || {}).innerText || "",
		errorsColor: document.getElementById("sum-errors") ? getComputedStyle(document.getElementById("sum-errors").cells[1]).color : ""}})`
	deadline := time.Now().Add(15 * time.Second)
	for {
		var raw string
		if err := chromedp.Run(bctx, chromedp.Evaluate(js, &raw)); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Rows    []rowInfo         `json:"rows"`
			Summary map[string]string `json:"summary"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		rows, summary = got.Rows, got.Summary
		if len(rows) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	const red = "rgb(187, 0, 0)"
	seen := map[string]bool{}
	for _, r := range rows {
		switch r.Kind {
		case "rejected":
			if !strings.Contains(r.Class, "rejected") || r.Button != "Retry" || r.Quiet || r.Color != red {
				t.Errorf("rejected row %+v: want the alarm colour and a Retry button", r)
			}
		case "overridden":
			if !strings.Contains(r.Class, "overridden") || r.Button != "re-apply" || !r.Quiet || r.Color == red {
				t.Errorf("overridden row %+v: want no alarm colour and a quiet re-apply", r)
			}
		}
		seen[r.Kind] = true
	}
	if !seen["rejected"] || !seen["overridden"] {
		t.Errorf("sync error rows %+v: want one rejected and one overridden", rows)
	}
	if !strings.HasSuffix(strings.TrimSpace(summary["errors"]), "1") || !strings.HasSuffix(strings.TrimSpace(summary["overridden"]), "1") || summary["errorsColor"] != red {
		t.Errorf("summary %v: want 1 rejected change (alarm colour) and 1 overridden value", summary)
	}
}
