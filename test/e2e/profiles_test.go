package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
)

const profilesBase = `
profile "technician" {
  table "bookings" {
    filter   = "owner == device.user && status != 'completed' && start >= today"
    priority = 10
  }
  table "workorders" { related = ["bookings.wo"] }
  table "customers" { related = ["workorders.customer"] }
}
profile "wide" {
  table "bookings" { filter = "owner == device.user" }
  table "workorders" { related = ["bookings.wo"] }
  table "customers" { related = ["workorders.customer"] }
}
`

func ids(t *testing.T, n *node, table string) []string {
	t.Helper()
	p, err := n.client().List(context.Background(), table, "", 1000)
	if err != nil {
		t.Fatalf("%s: list %s: %v", n.name, table, err)
	}
	var out []string
	for _, r := range p.Records {
		if !r.Deleted {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

// TestOfflineProfiles: a hub with a profiles file; two technicians, each
// assigned by device id with their user. Each holds exactly what its
// profile selects (the hub's preview counts, and the ids expected), with
// the related work orders and customers; a booking completed leaves the
// device (404 "not in this device's offline profile", still on the hub);
// a booking reassigned arrives with its work order; a profile changed in
// the file is reloaded and applied as a delta; a bad file is refused with
// its position and the previous profiles stay.
func TestOfflineProfiles(t *testing.T) {
	dir := t.TempDir()
	pfile := filepath.Join(dir, "profiles.hcl")
	if err := os.WriteFile(pfile, []byte(profilesBase), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--profiles", pfile)
	alice := startNode(t, "alice", "--hub", hub.sync, "--pull-interval", "1h")
	bob := startNode(t, "bob", "--hub", hub.sync, "--pull-interval", "1h")
	ctx := context.Background()
	nodeID := func(n *node) string {
		st, err := n.client().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Node
	}
	aliceID, bobID := nodeID(alice), nodeID(bob)
	assign := func(aliceProfile string) {
		t.Helper()
		src := profilesBase + fmt.Sprintf(`
device %q {
  profile    = %q
  attributes = { user = "alice" }
}
device %q {
  profile    = "technician"
  attributes = { user = "bob" }
}
`, aliceID, aliceProfile, bobID)
		if err := os.WriteFile(pfile, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		hub.mustCLI("profile", "reload")
	}
	assign("technician")

	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	for _, c := range []struct{ id, owner, start, wo, cust string }{
		{"b1", "alice", today, "w1", "c1"},
		{"b2", "alice", tomorrow, "w2", "c2"},
		{"b3", "bob", today, "w3", "c3"},
		{"b4", "alice", yesterday, "w4", "c4"},
		{"b5", "bob", tomorrow, "w5", "c3"},
	} {
		hub.mustCLI("put", "customers", c.cust, "name="+c.cust)
		hub.mustCLI("put", "workorders", c.wo, "customer="+c.cust, "title=job-"+c.wo)
		hub.mustCLI("put", "bookings", c.id, "owner="+c.owner, "start="+c.start, "wo="+c.wo, "status=open")
	}

	// Before syncing, the hub previews what each profile puts on each device.
	prev, err := hub.client().PreviewProfile(ctx, aliceID, "")
	if err != nil || prev.Profile != "technician" {
		t.Fatalf("preview: %+v %v", prev, err)
	}
	want := map[string]map[string]string{
		"alice": {"bookings": "[b1 b2]", "workorders": "[w1 w2]", "customers": "[c1 c2]"},
		"bob":   {"bookings": "[b3 b5]", "workorders": "[w3 w5]", "customers": "[c3]"},
	}
	for _, tc := range prev.Tables {
		if n := strings.Count(want["alice"][tc.Table], " ") + 1; tc.Records != n || tc.Bytes <= 0 {
			t.Errorf("preview of %s: %d records (%d bytes), want %d", tc.Table, tc.Records, tc.Bytes, n)
		}
	}
	if out := hub.mustCLI("profile", "preview", aliceID); !strings.Contains(out, "technician") {
		t.Errorf("profile preview: %s", out)
	}
	check := func(stage string) {
		t.Helper()
		for _, n := range []*node{alice, bob} {
			for table, w := range want[n.name] {
				if got := fmt.Sprint(ids(t, n, table)); got != w {
					t.Errorf("%s: %s holds %s %s, want %s", stage, n.name, table, got, w)
				}
			}
		}
	}
	alice.mustCLI("sync")
	bob.mustCLI("sync")
	check("first sync")
	if out := alice.mustCLI("profile", "show"); !strings.Contains(out, "technician") {
		t.Errorf("alice's profile show: %s", out)
	}

	// b1 completed at the office: it leaves alice's device, with w1 and
	// c1; the hub keeps it. b3 given to alice: it arrives, with w3 and c3.
	hub.mustCLI("put", "bookings", "b1", "status=completed")
	hub.mustCLI("put", "bookings", "b3", "owner=alice")
	want["alice"] = map[string]string{"bookings": "[b2 b3]", "workorders": "[w2 w3]", "customers": "[c2 c3]"}
	want["bob"] = map[string]string{"bookings": "[b5]", "workorders": "[w5]", "customers": "[c3]"}
	alice.mustCLI("sync")
	bob.mustCLI("sync")
	check("after completing b1 and reassigning b3")
	_, err = alice.client().Get(ctx, "bookings", "b1")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !strings.Contains(ae.Message, "not in this device's offline profile") {
		t.Errorf("alice reading b1: %v, want 404 not in this device's offline profile", err)
	}
	if r, err := hub.client().Get(ctx, "bookings", "b1"); err != nil || r.Deleted {
		t.Errorf("the hub's b1: %+v %v (leaving a profile deletes nothing)", r, err)
	}

	// Alice's own change to a booking she holds reaches the hub.
	alice.mustCLI("put", "bookings", "b2", "note=gate code 1234")
	alice.mustCLI("sync")
	if r, err := hub.client().Get(ctx, "bookings", "b2"); err != nil || string(r.Fields["note"]) != `"gate code 1234"` {
		t.Errorf("the hub's b2: %+v %v", r, err)
	}

	// A bad file is refused with its position; the profiles stay.
	os.WriteFile(pfile, []byte(`profile "x" {
  table "t" {
    filter = "owner =="
  }
}`), 0o644)
	_, errOut, code := hub.cli("profile", "reload")
	if code == 0 || !strings.Contains(errOut, "profiles.hcl:3") || !strings.Contains(errOut, "at 1:9") {
		t.Errorf("reloading a bad file: exit %d %q, want an error at profiles.hcl:3, expression 1:9", code, errOut)
	}

	// Alice's profile widened (past and completed bookings too): a delta.
	assign("wide")
	want["alice"] = map[string]string{"bookings": "[b1 b2 b3 b4]", "workorders": "[w1 w2 w3 w4]", "customers": "[c1 c2 c3 c4]"}
	alice.mustCLI("sync")
	check("after widening alice's profile")
	if st, _ := alice.client().Status(ctx); st == nil {
		t.Fatal("alice's status")
	}

	// After a restart alice holds the same, before any sync.
	alice.stop()
	alice.start()
	for table, w := range want["alice"] {
		if got := fmt.Sprint(ids(t, alice, table)); got != w {
			t.Errorf("after restart alice holds %s %s, want %s", table, got, w)
		}
	}
}
