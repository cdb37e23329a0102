package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// replicad lab run reports its progress on stderr: plain lines when
// stderr is not a terminal (the number of runs, then runs done with the
// elapsed time), a bar redrawn in place on a terminal; stdout and the
// files written are the same either way.
func TestLabRunProgress(t *testing.T) {
	dir := t.TempDir()
	run := func(out string, args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"lab", "run", "work-order", "--out", filepath.Join(dir, out)}, args...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("replicad lab run: %v\n%s", err, e.String())
		}
		return o.String(), e.String()
	}
	stdout, stderr := run("a")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) < 3 || !regexp.MustCompile(`^lab: (\d+) runs to simulate$`).MatchString(lines[0]) {
		t.Fatalf("stderr off a terminal:\n%s\nwant the number of runs, then a line per run done", stderr)
	}
	n := regexp.MustCompile(`\d+`).FindString(lines[0])
	if !regexp.MustCompile(`^lab: 1/` + n + ` runs done \(\S+, seed 1\), \d+s elapsed, ETA \d+s$`).MatchString(lines[1]) {
		t.Errorf("first progress line %q", lines[1])
	}
	if !regexp.MustCompile(`^lab: ` + n + `/` + n + ` runs done \(.*\), \d+s elapsed$`).MatchString(lines[len(lines)-1]) {
		t.Errorf("last progress line %q", lines[len(lines)-1])
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stdout, "runs done") {
		t.Errorf("off a terminal, progress must be plain lines on stderr only:\nstdout %q\nstderr %q", stdout, stderr)
	}
	if !strings.Contains(stdout, "work-order: "+n+" runs") {
		t.Errorf("stdout %q: want the summary", stdout)
	}

	stdout2, stderr2 := run("b", "--progress", "none")
	if stderr2 != "" || strings.ReplaceAll(stdout2, filepath.Join(dir, "b"), "") != strings.ReplaceAll(stdout, filepath.Join(dir, "a"), "") {
		t.Errorf("--progress none: stderr %q, stdout differs from the run with progress", stderr2)
	}
	for _, f := range []string{"runs.csv", "summary.json", "plots/convergence.svg", "plots/lost-conflicts.png"} {
		a, err1 := os.ReadFile(filepath.Join(dir, "a", f))
		b, err2 := os.ReadFile(filepath.Join(dir, "b", f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between runs with and without progress (%v %v)", f, err1, err2)
		}
	}

	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) (util-linux) is not installed: no pseudo-terminal to test the bar with")
	}
	cmd := exec.Command("script", "-qec", binary+" lab run work-order --out "+filepath.Join(dir, "c"), "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lab run on a terminal: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`\r\x1b\[K\[=+ *\] \d+/`+n+` runs`).Match(out) || !strings.Contains(string(out), "lab: "+n+"/"+n+" runs done in") {
		t.Errorf("on a terminal: want a bar redrawn in place, then a last line:\n%q", out)
	}
}
