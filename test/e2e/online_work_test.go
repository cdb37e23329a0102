package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/replicad/replicad/client"
)

// TestDuplicatesThroughTheDaemon: the hub (--keys contacts=email,org)
// flags a record a device creates with the same keys as a live one, in
// GET /v1/conflicts (kind "duplicate") and its status count; the flag
// reaches the device, which merges the pair with `replicad dedupe`; the
// merge reaches the hub. A record differing in one key is not flagged.
func TestDuplicatesThroughTheDaemon(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--keys", "contacts=email,org")
	dev := startNode(t, "dev", "--hub", hub.sync)
	ctx := context.Background()
	dev.mustCLI("put", "contacts", "c1", "email=ann@x", "org=acme", "name=Ann")
	dev.mustCLI("sync")
	dev.mustCLI("put", "contacts", "c2", "email=ann@x", "org=acme", "phone=555")
	dev.mustCLI("put", "contacts", "c3", "email=ann@x", "org=other")
	dev.mustCLI("sync")

	dupsOf := func(n *node) (string, error) {
		var out struct{ Conflicts []client.Conflict }
		if err := json.Unmarshal([]byte(n.mustCLI("conflicts")), &out); err != nil {
			return "", err
		}
		var got []string
		for _, c := range out.Conflicts {
			if c.Kind != "duplicate" && c.Kind != "field" {
				return "", fmt.Errorf("conflict without a kind: %+v", c)
			}
			if c.Kind == "duplicate" {
				got = append(got, c.Table+"/"+c.ID+"~"+strings.Join(c.With, ","))
			}
		}
		return strings.Join(got, " "), nil
	}
	eventually(t, "the hub flags c2", func() error {
		got, err := dupsOf(hub)
		if err == nil && got != "contacts/c2~c1" {
			err = fmt.Errorf("duplicates %q, want contacts/c2~c1", got)
		}
		return err
	})
	if st, err := hub.client().Status(ctx); err != nil || st.Conflicts != 1 {
		t.Fatalf("hub status conflicts = %v, %v; want 1", st, err)
	}
	eventually(t, "the device lists the flag", func() error {
		dev.mustCLI("sync")
		var out struct{ Duplicates []client.Duplicate }
		if err := json.Unmarshal([]byte(dev.mustCLI("duplicates")), &out); err != nil {
			return err
		}
		if len(out.Duplicates) != 1 || out.Duplicates[0].ID != "c2" || out.Duplicates[0].Status != "open" {
			return fmt.Errorf("duplicates = %+v", out.Duplicates)
		}
		return nil
	})
	if _, errOut, code := dev.cli("dedupe", "contacts", "c2", "fuse"); code == 0 || !strings.Contains(errOut, "fuse") {
		t.Fatalf("dedupe with a bad action: exit %d, %q", code, errOut)
	}
	dev.mustCLI("dedupe", "contacts", "c2", "merge", "--with", "c1")
	dev.mustCLI("sync")
	eventually(t, "the merge reaches the hub", func() error {
		if got, err := dupsOf(hub); err != nil || got != "" {
			return fmt.Errorf("open duplicates on the hub: %q, %v", got, err)
		}
		r, err := hub.client().Get(ctx, "contacts", "c1")
		if err != nil {
			return err
		}
		if got := fieldsOf(t, r); got != `{"email":"ann@x","name":"Ann","org":"acme","phone":"555"}` {
			return fmt.Errorf("c1 = %s", got)
		}
		if _, err := hub.client().Get(ctx, "contacts", "c2"); !client.IsNotFound(err) {
			return fmt.Errorf("c2 still there: %v", err)
		}
		return nil
	})
}

// webhook is a receiver on loopback that answers 503 while down.
type webhook struct {
	mu    sync.Mutex
	down  bool
	calls int
	got   []string // table/id of the accepted deliveries
	srv   *httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Table, ID string }
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.got = append(h.got, p.Table+"/"+p.ID)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *webhook) state() (calls int, got string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, strings.Join(h.got, " ")
}

// TestWorkflowWebhookAfterHubRestart: a hub workflow (HCL config) POSTs
// the changes of its table, in the order the hub accepted them; while
// the webhook fails, sync goes on and the workflow shows the error; the
// hub is killed (-9) with a change unconfirmed and restarted: the change
// is delivered then, and the ones confirmed before are not delivered
// again.
func TestWorkflowWebhookAfterHubRestart(t *testing.T) {
	h := newWebhook(t)
	conf := filepath.Join(t.TempDir(), "hub.hcl")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
workflow "notify" {
  table       = "jobs"
  webhook     = %q
  max_backoff = "300ms"
}
`, h.srv.URL+"/hook")), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--config", conf)
	dev := startNode(t, "dev", "--hub", hub.sync)
	ctx := context.Background()

	dev.mustCLI("put", "jobs", "j1", "title=pump")
	dev.mustCLI("put", "notes", "n1", "text=not a job")
	dev.mustCLI("sync")
	hub.mustCLI("put", "jobs", "j2", "title=valve")
	eventually(t, "j1 and j2 delivered", func() error {
		if _, got := h.state(); got != "jobs/j1 jobs/j2" {
			return fmt.Errorf("delivered %q", got)
		}
		return nil
	})

	h.mu.Lock()
	h.down = true
	h.mu.Unlock()
	dev.mustCLI("put", "jobs", "j3", "title=late")
	dev.mustCLI("sync") // a failing hook does not block sync
	eventually(t, "the failure shows", func() error {
		var out struct{ Workflows []client.Workflow }
		if err := json.Unmarshal([]byte(hub.mustCLI("workflows")), &out); err != nil {
			return err
		}
		if len(out.Workflows) != 1 || out.Workflows[0].State != "retrying" || !strings.Contains(out.Workflows[0].LastError, "503") {
			return fmt.Errorf("workflows = %+v", out.Workflows)
		}
		return nil
	})
	if r, err := hub.client().Get(ctx, "jobs", "j3"); err != nil || fieldsOf(t, r) != `{"title":"late"}` {
		t.Fatalf("j3 on the hub: %v", err)
	}

	hub.kill()
	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
	hub.start()
	eventually(t, "j3 delivered after the restart", func() error {
		if _, got := h.state(); got != "jobs/j1 jobs/j2 jobs/j3" {
			return fmt.Errorf("delivered %q", got)
		}
		return nil
	})
	var ds struct{ Deliveries []client.Delivery }
	if err := json.Unmarshal([]byte(hub.mustCLI("deliveries", "notify")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Deliveries) != 3 || ds.Deliveries[0].ID != "j3" || ds.Deliveries[0].Status != "delivered" || ds.Deliveries[0].Attempts < 1 {
		t.Fatalf("deliveries = %+v", ds.Deliveries)
	}
}
