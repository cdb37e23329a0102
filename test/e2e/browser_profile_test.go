package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// needChromium skips the test when Debian's chromium is not installed,
// and fails it in CI, where .ci/run installs it (ensure_chromium).
func needChromium(t *testing.T) {
	t.Helper()
	if fi, err := os.Stat(chromiumPath); err != nil || fi.Mode()&0o111 == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI: .ci/run's ensure_chromium should have installed it", chromiumPath)
		}
		t.Skipf("%s not found: install Debian's chromium (apt-get install chromium; .ci/run does)", chromiumPath)
	}
}

// headlessChromium starts a headless chromium on a fresh profile for the
// test (stopped at its end) and returns a browser context bounded to 45
// s, and the uncaught exceptions its pages throw (read after the runs).
func headlessChromium(t *testing.T) (context.Context, *[]string) {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(browserProfile(t)))
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	bctx, cancelTimeout := context.WithTimeout(bctx, 45*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	thrown := &[]string{}
	chromedp.ListenTarget(bctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			*thrown = append(*thrown, e.ExceptionDetails.Text)
		}
	})
	return bctx, thrown
}

// browserProfile returns a fresh chromium profile directory, removed after
// the test. Chromium's helper processes (crash handler, zygote) may still
// write into it for a moment after the browser is stopped, so removal is
// retried for a few seconds rather than done once by t.TempDir's cleanup,
// which failed the test with "directory not empty".
func browserProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "replicad-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err = os.RemoveAll(dir); err == nil || time.Now().After(end) {
				break
			}
		}
		if err != nil {
			t.Logf("chromium profile %s not removed: %v", dir, err)
		}
	})
	return dir
}
