package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// An agent asked to serve sync off loopback without mutual TLS refuses to
// start and says how to fix it.
func TestInsecureSyncRefused(t *testing.T) {
	out, err := exec.Command(binary, "agent", "--data-dir", t.TempDir(), "--api-addr", freeAddr(t), "--sync-addr", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--sync-addr") || !strings.Contains(string(out), "insecure") || !strings.Contains(string(out), "tls") {
		t.Fatalf("sync on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
}
