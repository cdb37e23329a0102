package credentials

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/store"
)

var testAtRestKey = bytes.Repeat([]byte{0xa7}, store.KeySize)

func TestParseKey(t *testing.T) {
	hexKey := hex.EncodeToString(testAtRestKey)
	for _, tc := range []struct {
		in   string
		ok   bool
		want string // error substring
	}{
		{string(testAtRestKey), true, ""},
		{hexKey, true, ""},
		{hexKey + "\n", true, ""},
		{"  " + strings.ToUpper(hexKey) + "\r\n", true, ""},
		{"", false, "0 bytes: want exactly 32 raw bytes, or 64 hex characters"},
		{hexKey[:62], false, "62 bytes"},
		{hexKey + "00", false, "66 bytes"},
		{strings.Repeat("zz", 32), false, "not hex"},
		{string(testAtRestKey[:31]), false, "31 bytes"},
		{string(testAtRestKey) + "\n", false, "33 bytes"},
	} {
		k, err := parseKey([]byte(tc.in), "test")
		if tc.ok {
			if err != nil || !bytes.Equal(k, testAtRestKey) {
				t.Errorf("%q: %x %v", tc.in, k, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "from test") {
			t.Errorf("%q: got %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseKey: key text from outside (a file, a variable, a command's
// output) is either a 32-byte key or an error; never a panic, never a key
// of another length.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte(hex.EncodeToString(testAtRestKey)))
	f.Add(testAtRestKey)
	f.Add([]byte(" \n"))
	f.Add([]byte(strings.Repeat("g", 64)))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := parseKey(in, "fuzz")
		if err != nil {
			if k != nil {
				t.Fatal("key with error")
			}
			return
		}
		if len(k) != store.KeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
		if len(in) == store.KeySize && !bytes.Equal(k, in) {
			t.Fatal("32 raw bytes not taken as the key")
		}
	})
}

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

func TestKeyFromFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := writeKeyFile(t, []byte(hex.EncodeToString(testAtRestKey)+"\n"), mode)
		c := config.AtRestConfig{KeyFile: p}
		if k, err := LoadKey(&c); err != nil || !bytes.Equal(k, testAtRestKey) {
			t.Fatalf("mode %v: %x %v", mode, k, err)
		}
	}
	raw := writeKeyFile(t, testAtRestKey, 0o600)
	if k, err := LoadKey(&config.AtRestConfig{KeyFile: raw}); err != nil || !bytes.Equal(k, testAtRestKey) {
		t.Fatalf("raw: %x %v", k, err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		p := writeKeyFile(t, testAtRestKey, mode)
		_, err := LoadKey(&config.AtRestConfig{KeyFile: p})
		if err == nil || !strings.Contains(err.Error(), "must not be readable by group or others") || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %v: %v", mode, err)
		}
	}
	if _, err := LoadKey(&config.AtRestConfig{KeyFile: filepath.Join(t.TempDir(), "missing")}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadKey(&config.AtRestConfig{KeyFile: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	short := writeKeyFile(t, []byte("0123"), 0o600)
	if _, err := LoadKey(&config.AtRestConfig{KeyFile: short}); err == nil || !strings.Contains(err.Error(), "4 bytes") || !strings.Contains(err.Error(), short) {
		t.Errorf("short: %v", err)
	}
	if os.Geteuid() != 0 { // root reads anything
		unreadable := writeKeyFile(t, testAtRestKey, 0o000)
		if _, err := LoadKey(&config.AtRestConfig{KeyFile: unreadable}); err == nil || !errors.Is(err, os.ErrPermission) {
			t.Errorf("unreadable: %v", err)
		}
	}
}

func TestKeyFromEnv(t *testing.T) {
	const name = "REPLICAD_TEST_AT_REST_KEY"
	t.Setenv(name, hex.EncodeToString(testAtRestKey))
	k, err := LoadKey(&config.AtRestConfig{KeyEnv: name})
	if err != nil || !bytes.Equal(k, testAtRestKey) {
		t.Fatalf("%x %v", k, err)
	}
	if _, ok := os.LookupEnv(name); ok {
		t.Fatal("the key stays in the environment (commands the agent runs would inherit it)")
	}
	if _, err := LoadKey(&config.AtRestConfig{KeyEnv: name}); err == nil || !strings.Contains(err.Error(), name+" is not set") {
		t.Fatalf("unset: %v", err)
	}
	t.Setenv(name, "abcd")
	if _, err := LoadKey(&config.AtRestConfig{KeyEnv: name}); err == nil || !strings.Contains(err.Error(), "environment variable "+name) || strings.Contains(err.Error(), "abcd") {
		t.Fatalf("bad length: %v", err)
	}
	if _, ok := os.LookupEnv(name); !ok {
		t.Fatal("a refused variable was removed")
	}
}

func TestKeyFromCommand(t *testing.T) {
	hexKey := hex.EncodeToString(testAtRestKey)
	k, err := LoadKey(&config.AtRestConfig{KeyCommand: "echo " + hexKey})
	if err != nil || !bytes.Equal(k, testAtRestKey) {
		t.Fatalf("%x %v", k, err)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"echo 'vault sealed' >&2; exit 3", "exit status 3 (stderr: vault sealed)"},
		{"/nonexistent/keytool", "exit status 127"},
		{"echo abc", "4 bytes: want exactly 32 raw bytes, or 64 hex characters"},
		{"head -c 10000 /dev/zero", "printed more than 4096 bytes"},
	} {
		_, err := LoadKey(&config.AtRestConfig{KeyCommand: tc.cmd})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.cmd, err, tc.want)
		}
	}
	start := time.Now()
	_, err = keyFromCommand("sleep 20", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
}
