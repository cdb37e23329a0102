package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/client"
)

// Read permissions on real processes with TLS: a device whose rule
// reads jobs whole and customers syncs them; the hub restarts with the
// rule narrowed to jobs:status; after the next sync the device shows,
// offline and online (through the hub's API), only the status of jobs
// and no customer, and its data directory holds no value it may not
// read once the hub's later writes arrive.
func TestReadPermissions(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "pki")
	tlsCmd := func(args ...string) {
		t.Helper()
		out, err := exec.Command(binary, append([]string{"tls"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("replicad tls %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	tlsCmd("ca", "create", "--dir", pki, "--cluster", "acme")
	tlsCmd("cert", "create", "hub", "--dir", pki, "--role", "hub")
	tlsCmd("cert", "create", "tech", "--dir", pki, "--node-id", "0d00000000000001")
	conf := filepath.Join(t.TempDir(), "hub.hcl")
	rule := func(read string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
permission "techs" {
  nodes = ["0d00000000000000/8"]
  write = ["jobs:status"]
  read  = [%s]
}
`, read)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rule(`"jobs", "customers"`)
	common := []string{"--cluster-id", "acme", "--gossip-addr", "off", "--tls-ca", filepath.Join(pki, "ca.crt"), "--tls-revoked", filepath.Join(pki, "revoked.txt")}
	certOf := func(name string) []string {
		return append(append([]string(nil), common...), "--tls-cert", filepath.Join(pki, name+".crt"), "--tls-key", filepath.Join(pki, name+".key"))
	}
	hub := startNode(t, "hub", append([]string{"--role", "hub", "--config", conf}, certOf("hub")...)...)
	tech := startNode(t, "tech", append([]string{"--hub", hub.sync, "--hub-api", hub.api}, certOf("tech")...)...)
	ctx := context.Background()

	hub.mustCLI("put", "jobs", "j1", "status=open", "notes=first-secret-note")
	hub.mustCLI("put", "customers", "c1", "name=ACME-first")
	eventually(t, "tech holds jobs and customers whole", func() error {
		tech.cli("sync")
		r, err := tech.client().Get(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if got := fieldsOf(t, r); got != `{"notes":"first-secret-note","status":"open"}` {
			return fmt.Errorf("j1 %s", got)
		}
		_, err = tech.client().Get(ctx, "customers", "c1")
		return err
	})

	// The rule narrows: the hub restarts with the new configuration.
	hub.stop()
	rule(`"jobs:status"`)
	hub.start()
	hub.mustCLI("put", "jobs", "j1", "status=done", "notes=second-secret-note")
	hub.mustCLI("put", "jobs", "j2", "status=new", "notes=third-secret-note")
	hub.mustCLI("put", "customers", "c2", "name=ACME-second")
	eventually(t, "tech holds only the status of jobs", func() error {
		tech.cli("sync")
		for id, want := range map[string]string{"j1": `{"status":"done"}`, "j2": `{"status":"new"}`} {
			r, err := tech.client().Get(ctx, "jobs", id)
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != want {
				return fmt.Errorf("%s %s", id, got)
			}
		}
		for _, id := range []string{"c1", "c2"} {
			if _, err := tech.client().Get(ctx, "customers", id); !client.IsNotFound(err) {
				return fmt.Errorf("customer %s: %v", id, err)
			}
		}
		return nil
	})
	page, err := tech.client().List(ctx, "customers", "", 100)
	if err != nil || len(page.Records) != 0 {
		t.Fatalf("tech lists customers %+v %v", page, err)
	}

	// Online reads through the hub's API hide the same.
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + tech.api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/tables/jobs/records/j2?online=true"); code != http.StatusOK || !strings.Contains(body, `"status":"new"`) || strings.Contains(body, "secret") || !strings.Contains(body, `"online":true`) {
		t.Fatalf("online j2: %d %s", code, body)
	}
	if code, body := get("/v1/tables/jobs/records?online=true"); code != http.StatusOK || strings.Contains(body, "secret") || !strings.Contains(body, `"j1"`) {
		t.Fatalf("online jobs: %d %s", code, body)
	}
	if code, body := get("/v1/tables/customers/records/c2?online=true"); code != http.StatusNotFound {
		t.Fatalf("online customer: %d %s, want 404", code, body)
	}
	if code, body := get("/v1/tables/customers/records?online=true"); code != http.StatusNotFound {
		t.Fatalf("online customers: %d %s, want 404", code, body)
	}
	// The hub itself shows everything.
	if r, err := hub.client().Get(ctx, "jobs", "j2"); err != nil || fieldsOf(t, r) != `{"notes":"third-secret-note","status":"new"}` {
		t.Fatalf("hub j2 %v %v", r, err)
	}

	// Nothing the device may not read since the narrowing reached its
	// disk (values written before it stay in its change log: README).
	tech.stop()
	err = filepath.WalkDir(tech.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range []string{"second-secret-note", "third-secret-note", "ACME-second"} {
			if bytes.Contains(data, []byte(s)) {
				return fmt.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
