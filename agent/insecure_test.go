package agent

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/internal/ext/authz"
)

// A node serving sync off loopback without mutual TLS refuses to start
// unless told --insecure (flag or config key); loopback needs no flag.
func TestInsecureSyncNeedsFlag(t *testing.T) {
	if _, err := ParseArgs([]string{"--sync-addr", "0.0.0.0:7401"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--sync-addr") || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("sync on 0.0.0.0 without TLS: %v; want a refusal naming --sync-addr and insecure", err)
	}
	if _, err := ParseArgs([]string{"--sync-addr", ":7401"}, io.Discard); err == nil {
		t.Fatal("sync on every interface without TLS was accepted")
	}
	c, err := ParseArgs([]string{"--sync-addr", "0.0.0.0:7401", "--insecure"}, io.Discard)
	if err != nil || !c.Security.Insecure {
		t.Fatalf("--insecure: %+v %v", c.Security, err)
	}
	if _, err := ParseArgs([]string{"--sync-addr", "127.0.0.1:7401"}, io.Discard); err != nil {
		t.Fatalf("loopback sync: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("sync_addr = \"0.0.0.0:7401\"\ninsecure = true\n"), 0o644)
	if c, err := ParseArgs([]string{"--config", path}, io.Discard); err != nil || !c.Security.Insecure {
		t.Fatalf("insecure = true in the file: %+v %v", c.Security, err)
	}

	// newSecurity refuses too (a Config built in Go), warns when told,
	// and status says so.
	cfg := testConfig(t, "hub")
	cfg.SyncAddr = "0.0.0.0:7401" // not bound: newSecurity only decides
	if _, err := authz.NewSecurity(cfg, hclog.NewNullLogger()); err == nil {
		t.Fatal("newSecurity accepted sync off loopback without TLS")
	}
	cfg.Security.Insecure = true
	sink := &logSink{}
	s, err := authz.NewSecurity(cfg, hclog.New(&hclog.LoggerOptions{Output: sink}))
	if err != nil {
		t.Fatal(err)
	}
	if !sink.has("[WARN]") || !sink.has("INSECURE") {
		t.Errorf("no WARN at start: %s", sink.buf.String())
	}
	if !s.Status().Insecure {
		t.Error("status does not say insecure")
	}
	cfg.SyncAddr = "127.0.0.1:7401"
	if s, err := authz.NewSecurity(cfg, hclog.NewNullLogger()); err != nil || s.Status().Insecure {
		t.Fatalf("loopback sync with --insecure: insecure %v, %v", s.Status().Insecure, err)
	}
}
