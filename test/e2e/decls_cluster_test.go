package e2e

import (
	"fmt"
	"testing"

	"github.com/replicad/replicad/api"
)

// TestIndexDeclaredInHubCluster: two hubs syncing with each other, A
// declaring an index (--index), B none. B restarted after it holds A's
// declaration leaves it in place, on both hubs; A restarted without it
// removes it, on B too.
func TestIndexDeclaredInHubCluster(t *testing.T) {
	a := startNode(t, "hub-a", "--role", "hub", "--gossip-addr", "off", "--index", "bookings=owner,start")
	b := startNode(t, "hub-b", "--role", "hub", "--gossip-addr", "off", "--hub", a.sync, "--pull-interval", "1h")
	declared := func(n *node) string {
		var st api.Status
		mustGet(t, n.api, "/v1/status", &st)
		names := ""
		for _, ix := range st.Indexes {
			names += ix.Name + " "
		}
		return names
	}
	eventually(t, "hub B holds A's index declaration", func() error {
		b.mustCLI("sync")
		if got := declared(b); got != "owner_start " {
			return fmt.Errorf("hub B's indexes %q", got)
		}
		return nil
	})
	b.stop()
	b.start()
	b.mustCLI("sync")
	if got := declared(b); got != "owner_start " {
		t.Fatalf("hub B restarted without declarations: indexes %q, want A's owner_start", got)
	}
	if got := declared(a); got != "owner_start " {
		t.Fatalf("hub A after B restarted and synced: indexes %q, want owner_start", got)
	}
	a.stop()
	a.args = []string{"--role", "hub", "--gossip-addr", "off"}
	a.start()
	eventually(t, "hub B drops the index A no longer declares", func() error {
		b.mustCLI("sync")
		if got := declared(b); got != "" {
			return fmt.Errorf("hub B's indexes %q", got)
		}
		return nil
	})
}
