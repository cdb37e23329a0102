package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpAndUnknownCommands: through the binary, replicad help NAME
// shows a command's usage and flags, a misspelt command is exit 2 with a
// suggestion, and replicad tls still creates gossip keys.
func TestHelpAndUnknownCommands(t *testing.T) {
	runBin := func(args ...string) (string, int) {
		out, err := exec.Command(binary, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := runBin("help", "resolve"); code != 0 || !strings.Contains(out, "Usage: replicad resolve TABLE ID FIELD") || !strings.Contains(out, "--pick") {
		t.Errorf("replicad help resolve: exit %d\n%s", code, out)
	}
	if out, code := runBin("stauts"); code != 2 || !strings.Contains(out, "did you mean status?") {
		t.Errorf("replicad stauts: exit %d %q", code, out)
	}
	if out, code := runBin("--help"); code != 0 || !strings.Contains(out, "  tls ...") || !strings.Contains(out, "  compact") {
		t.Errorf("replicad --help: exit %d\n%s", code, out)
	}
	if out, code := runBin("tls", "gossip-key", "new"); code != 0 || len(strings.TrimSpace(out)) != 44 {
		t.Errorf("replicad tls gossip-key new: exit %d %q", code, out)
	}
}
