package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replicad/replicad/secure"
)

// TestTLSCommand: replicad tls creates the CA, node certificates and
// gossip keyrings, shows certificates, and refuses bad input (exit 1) and
// bad usage (exit 2).
func TestTLSCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out, errb bytes.Buffer
	run := func(args ...string) int {
		out.Reset()
		errb.Reset()
		return runTLS(args, &out, &errb)
	}
	if c := run("ca", "create", "--dir", dir, "--cluster", "acme"); c != 0 {
		t.Fatalf("ca create: %d %s", c, errb.String())
	}
	if c := run("ca", "create", "--dir", dir, "--cluster", "acme"); c != 1 || !strings.Contains(errb.String(), "refusing to overwrite") {
		t.Fatalf("second ca create: %d %s", c, errb.String())
	}
	if c := run("cert", "create", "hub1", "--dir", dir, "--role", "hub"); c != 0 || !strings.Contains(out.String(), "role hub") {
		t.Fatalf("cert create: %d %s %s", c, out.String(), errb.String())
	}
	if c := run("cert", "create", "d1", "--dir", dir, "--node-id", "00000000000000ff"); c != 0 || !strings.Contains(out.String(), "00000000000000ff/64") {
		t.Fatalf("cert create --node-id: %d %s %s", c, out.String(), errb.String())
	}
	if c := run("cert", "show", filepath.Join(dir, "d1.crt")); c != 0 || !strings.Contains(out.String(), `cluster "acme", role device`) {
		t.Fatalf("cert show: %d %s %s", c, out.String(), errb.String())
	}
	if c := run("cert", "create", "../x", "--dir", dir); c != 1 {
		t.Fatalf("bad name: %d", c)
	}
	if c := run("cert", "create", "x", "--dir", dir, "--role", "admin"); c != 1 {
		t.Fatalf("bad role: %d", c)
	}
	if c := run("bogus", "thing"); c != 2 {
		t.Fatalf("unknown subcommand: %d", c)
	}
	if c := run("cert", "shwo", "x"); c != 2 || !strings.Contains(errb.String(), `did you mean cert show?`) {
		t.Fatalf("misspelt subcommand: %d %s", c, errb.String())
	}
	kr := filepath.Join(dir, "gossip.keyring")
	if c := run("gossip-key", "create", kr); c != 0 || !strings.Contains(out.String(), "fingerprint") {
		t.Fatalf("gossip-key create: %d %s %s", c, out.String(), errb.String())
	}
	if keys, err := secure.ReadKeyring(kr); err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("the keyring created: %v %v", keys, err)
	}
	if c := run("gossip-key", "create", kr); c != 1 || !strings.Contains(errb.String(), "refusing to overwrite") {
		t.Fatalf("gossip-key create over a keyring: %d %s", c, errb.String())
	}
	if c := run("gossip-key", "new"); c != 0 {
		t.Fatalf("gossip-key new: %d %s", c, errb.String())
	} else if _, err := secure.ParseGossipKey(strings.TrimSpace(out.String())); err != nil {
		t.Fatalf("gossip-key new printed %q: %v", out.String(), err)
	}
	for _, f := range []string{secure.CAKeyFile, "hub1.key", "d1.key", "gossip.keyring"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
}
