package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/api"
)

// TestIndexDeclaredOnHub: `--index` on a hub reaches a device, which
// builds the index (its log and GET /v1/status say so); restarted
// without it, the hub removes the declaration and the device drops the
// index. A hub config with a bad view does not start, naming the file
// position.
func TestIndexDeclaredOnHub(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--index", "bookings=owner,start")
	dev := startNode(t, "dev", "--hub", hub.sync, "--pull-interval", "1h")
	dev.mustCLI("put", "bookings", "b1", "owner=ann", "start=09:00")
	dev.mustCLI("put", "bookings", "b2", "owner=bob", "start=08:00")
	indexes := func(n *node) []api.IndexStatus {
		var st api.Status
		mustGet(t, n.api, "/v1/status", &st)
		return st.Indexes
	}
	eventually(t, "the device builds the hub's index", func() error {
		dev.mustCLI("sync")
		ix := indexes(dev)
		if len(ix) != 1 || ix[0].Name != "owner_start" || ix[0].Table != "bookings" || !ix[0].Built || ix[0].Indexed != 2 {
			return fmt.Errorf("device's indexes %+v", ix)
		}
		return nil
	})
	if !strings.Contains(dev.log.String(), "index built") {
		t.Errorf("the device's log lacks the build")
	}
	if ix := indexes(hub); len(ix) != 1 || ix[0].Name != "owner_start" {
		t.Errorf("hub's indexes %+v", ix)
	}

	hub.stop()
	hub.args = []string{"--role", "hub", "--gossip-addr", "off"}
	hub.start()
	eventually(t, "the device drops the removed index", func() error {
		dev.mustCLI("sync")
		if ix := indexes(dev); len(ix) != 0 {
			return fmt.Errorf("device's indexes %+v", ix)
		}
		return nil
	})

	cfg := filepath.Join(t.TempDir(), "hub.hcl")
	os.WriteFile(cfg, []byte("role = \"hub\"\nview \"mine\" {\n  table = \"bookings\"\n  where = \"owner == device.user &&\"\n}\n"), 0o644)
	out, err := exec.Command(binary, "agent", "--config", cfg, "--data-dir", filepath.Join(t.TempDir(), "bad"),
		"--api-addr", freeAddr(t), "--sync-addr", freeAddr(t), "--gossip-addr", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), cfg+":4:") || !strings.Contains(string(out), `view "mine": where:`) {
		t.Fatalf("a hub with a bad view: %v\n%s", err, out)
	}
}
