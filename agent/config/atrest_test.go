package config

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeKeyFile(t *testing.T, content []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "store.key")
	if err := os.WriteFile(p, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

var testAtRestKey = bytes.Repeat([]byte{0xa7}, 32)

func TestAtRestConfig(t *testing.T) {
	keyFile := writeKeyFile(t, testAtRestKey, 0o600)
	c, err := ParseArgs([]string{"--encryption-key-file", keyFile}, io.Discard)
	if err != nil || c.AtRest.KeyFile != keyFile {
		t.Fatalf("%+v %v", c.AtRest, err)
	}
	_, err = ParseArgs([]string{"--encryption-key-file", keyFile, "--encryption-key-env", "K"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--encryption-key-env: the encryption key has one source") {
		t.Fatalf("two sources: %v", err)
	}
	if _, err := ParseArgs([]string{"--encryption-key-env", "1BAD"}, io.Discard); err == nil || !strings.Contains(err.Error(), "not an environment variable name") {
		t.Fatalf("bad env name: %v", err)
	}
	// The file's keys, and a flag replacing the file's source.
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("encryption_key_command = \"pass show replicad\"\n"), 0o644)
	c, err = ParseArgs([]string{"--config", path}, io.Discard)
	if err != nil || c.AtRest != (AtRestConfig{KeyCommand: "pass show replicad"}) {
		t.Fatalf("file: %+v %v", c.AtRest, err)
	}
	c, err = ParseArgs([]string{"--config", path, "--encryption-key-env", "REPLICAD_KEY"}, io.Discard)
	if err != nil || c.AtRest != (AtRestConfig{KeyEnv: "REPLICAD_KEY"}) {
		t.Fatalf("flag over file: %+v %v", c.AtRest, err)
	}
	os.WriteFile(path, []byte("encryption_key_file = \"/k\"\nencryption_key_env = \"K\"\n"), 0o644)
	cfg := DefaultConfig()
	if err := cfg.LoadFile(path); err == nil || !strings.Contains(err.Error(), "c.hcl:2:1: encryption_key_env: the encryption key has one source") {
		t.Fatalf("two sources in a file: %v", err)
	}
}
