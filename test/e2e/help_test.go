package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentHelpPolicies: the binary's `agent --help` says policies are
// applied, not that every table merges as lww.
func TestAgentHelpPolicies(t *testing.T) {
	out, err := exec.Command(binary, "agent", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("agent --help: %v\n%s", err, out)
	}
	for _, stale := range []string{"not applied yet", "merges as lww"} {
		if strings.Contains(string(out), stale) {
			t.Errorf("agent --help still says %q:\n%s", stale, out)
		}
	}
	if !strings.Contains(string(out), "arbitrating hub") {
		t.Errorf("agent --help does not say who applies the policies:\n%s", out)
	}
}
