package e2e

import (
	"os"
	"testing"
	"time"
)

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
