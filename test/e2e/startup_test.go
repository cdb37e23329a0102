package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBusyPortLeavesNothing: an agent whose API, sync or gossip address is taken
// fails at once with a message naming the address and the flag to change,
// and leaves nothing in its (fresh) data directory: no store, no lock file.
func TestBusyPortLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	for _, c := range []struct {
		name              string
		api, sync, gossip string
		want              []string
	}{
		{"api", taken, freeAddr(t), "off", []string{"api address " + taken, "already in use", "--api-addr"}},
		{"sync", freeAddr(t), taken, "off", []string{"sync address " + taken, "already in use", "--sync-addr"}},
		{"gossip", freeAddr(t), freeAddr(t), taken, []string{"gossip address " + taken, "already in use", "--gossip-addr"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			out, err := exec.Command(binary, "agent", "--data-dir", dir, "--api-addr", c.api, "--sync-addr", c.sync, "--gossip-addr", c.gossip).CombinedOutput()
			if err == nil {
				t.Fatalf("the agent started on a busy %s port:\n%s", c.name, out)
			}
			msg := strings.TrimSpace(string(out))
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("want one line, got:\n%s", msg)
			}
			if _, err := os.Stat(filepath.Join(dir, "store")); !os.IsNotExist(err) {
				t.Errorf("a store directory was left behind (stat: %v)", err)
			}
			if ents, err := os.ReadDir(dir); !os.IsNotExist(err) {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("the data directory was created (holding %v, %v): want nothing on disk", names, err)
			}
		})
	}
}

// TestSameConfigTwice: a second agent started with the first one's data
// directory and ports is told that another agent uses that directory.
func TestSameConfigTwice(t *testing.T) {
	d := startNode(t, "device")
	out, err := exec.Command(binary, "agent", "--data-dir", d.dir, "--api-addr", d.api, "--sync-addr", d.sync).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another replicad agent (pid ") || !strings.Contains(string(out), d.dir) {
		t.Fatalf("second agent on the same directory and ports: %v\n%s", err, out)
	}
}
