package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A hub with TLS and permissions signs a grant per rule; a device that
// syncs directly with another device takes that device's writes only
// within its grant: a forbidden write is refused (not applied, not held),
// an allowed one is taken.
func TestGrantsBetweenDevices(t *testing.T) {
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
	tlsCmd("cert", "create", "dev1", "--dir", pki, "--node-id", "0d00000000000001")
	tlsCmd("cert", "create", "dev2", "--dir", pki, "--node-id", "0d00000000000002")
	conf := filepath.Join(t.TempDir(), "hub.hcl")
	if err := os.WriteFile(conf, []byte(`
permission "techs" {
  nodes = ["0d00000000000000/8"]
  write = ["jobs:status"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--cluster-id", "acme", "--tls-ca", filepath.Join(pki, "ca.crt"), "--tls-revoked", filepath.Join(pki, "revoked.txt")}
	certOf := func(name string) []string {
		return append(append([]string(nil), common...), "--tls-cert", filepath.Join(pki, name+".crt"), "--tls-key", filepath.Join(pki, name+".key"))
	}
	hub := startNode(t, "hub", append([]string{"--role", "hub", "--gossip-addr", "off", "--config", conf}, certOf("hub")...)...)
	// dev1 has no partner: its writes reach dev2 only directly.
	dev1 := startNode(t, "dev1", certOf("dev1")...)
	dev2 := startNode(t, "dev2", append([]string{"--hub", hub.sync, "--hub", dev1.sync}, certOf("dev2")...)...)
	ctx := context.Background()

	eventually(t, "dev2 holds the hub's grant", func() error {
		dev2.cli("sync")
		_, err := dev2.client().Get(ctx, "_replicad_grants", "techs")
		return err
	})
	dev1.mustCLI("put", "jobs", "j1", "status=done")
	dev1.mustCLI("put", "jobs", "j1", "title=hacked")
	dev1.mustCLI("put", "jobs", "j2", "status=open")
	eventually(t, "dev2 takes dev1's granted writes from dev1", func() error {
		dev2.cli("sync")
		r, err := dev2.client().Get(ctx, "jobs", "j2")
		if err != nil {
			return err
		}
		if got := fieldsOf(t, r); got != `{"status":"open"}` {
			return fmt.Errorf("j2 %s", got)
		}
		return nil
	})
	r, err := dev2.client().Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(t, r); got != `{"status":"done"}` {
		t.Fatalf("dev2 shows j1 %s: the forbidden title from dev1 must not apply", got)
	}
	if !strings.Contains(dev2.log.String(), "write from a device peer refused") {
		t.Fatalf("dev2 did not log the refusal:\n%s", dev2.log)
	}
	// The hub never saw any of it (dev1 has not met it): dev2 did not
	// pass dev1's writes on as its own.
	if _, err := hub.client().Get(ctx, "jobs", "j2"); err == nil {
		t.Fatal("the hub holds j2: dev2 relayed dev1's writes to the hub in own mode")
	} else if !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
}
