package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncryptionAtRest: a device writes with a plain store; restarted
// with a key in an environment variable it migrates the store (the log
// says so), reads everything back, writes more, and after a restart reads
// it all again; no file of its data directory holds a value in plaintext;
// `replicad status` says the store is encrypted; started without the key,
// or with another key, it refuses to start with a message naming the
// problem, and the store is left as it was.
func TestEncryptionAtRest(t *testing.T) {
	const envVar = "REPLICAD_E2E_STORE_KEY"
	key := make([]byte, 32)
	rand.Read(key)
	marker := "plaintext-marker-" + hex.EncodeToString(key[:4])
	ctx := context.Background()

	d := startNode(t, "device")
	c := d.client()
	put := func(id, v string) {
		t.Helper()
		if _, err := c.Put(ctx, "notes", id, map[string]json.RawMessage{"body": json.RawMessage(fmt.Sprintf("%q", v))}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			r, err := c.Get(ctx, "notes", id)
			if err != nil || !strings.Contains(fieldsOf(t, r), marker) {
				t.Fatalf("%s: %+v %v", id, r, err)
			}
		}
	}
	for i := 0; i < 20; i++ {
		put(fmt.Sprint("plain", i), marker+"-before")
	}
	// Killed, not stopped: the values stay in the WAL as written (a clean
	// stop flushes them into compressed tables, where the marker may not
	// show), and the migration must leave no trace of them there either.
	d.kill()
	storeDir := filepath.Join(d.dir, "store")
	if n := filesHolding(t, storeDir, marker); n == 0 {
		t.Fatal("the plain store's files do not hold the marker: the check below would prove nothing")
	}

	// Restart with the key: the store is migrated.
	t.Setenv(envVar, hex.EncodeToString(key))
	d.args = append(d.args, "--encryption-key-env", envVar)
	d.start()
	if !strings.Contains(d.log.String(), "migration started") || !strings.Contains(d.log.String(), "encrypting the store's values at rest: done") {
		t.Fatalf("no migration in the log:\n%s", d.log)
	}
	check("plain0", "plain19")
	for i := 0; i < 20; i++ {
		put(fmt.Sprint("sealed", i), marker+"-after")
	}
	var st struct {
		Encrypted bool `json:"encrypted_at_rest"`
	}
	if err := json.Unmarshal([]byte(d.mustCLI("status")), &st); err != nil || !st.Encrypted {
		t.Fatalf("replicad status: %+v %v", st, err)
	}
	d.stop()
	d.start()
	check("plain0", "plain19", "sealed0", "sealed19")
	if strings.Contains(d.log.String(), "migration started") {
		t.Fatal("migrated again")
	}
	d.stop()
	if n := filesHolding(t, storeDir, marker); n != 0 {
		t.Fatalf("%d files of the encrypted store hold plaintext", n)
	}
	before := dirState(t, storeDir)

	// Without the key, and with another key: refused, nothing changed.
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no key", nil, nil, "encrypted at rest"},
		{"other key", []string{envVar + "=" + strings.Repeat("ab", 32)}, []string{"--encryption-key-env", envVar}, "wrong encryption key"},
		{"bad key", []string{envVar + "=abcd"}, []string{"--encryption-key-env", envVar}, "want exactly 32 raw bytes, or 64 hex characters"},
		{"unset variable", nil, []string{"--encryption-key-env", envVar}, envVar + " is not set"},
	} {
		args := append([]string{"agent", "--data-dir", d.dir, "--api-addr", freeAddr(t), "--sync-addr", freeAddr(t)}, tc.args...)
		cmd := exec.Command(binary, args...)
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, envVar+"=") {
				env = append(env, e)
			}
		}
		cmd.Env = append(env, tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: %v\n%s\nwant a failure mentioning %q", tc.name, err, out, tc.want)
		}
		if strings.Contains(string(out), hex.EncodeToString(key)) {
			t.Errorf("%s: the key is in the output", tc.name)
		}
	}
	if after := dirState(t, storeDir); after != before {
		t.Fatal("a refused start changed the store's files")
	}
	// With the key it starts again.
	d.start()
	check("plain0", "sealed19")

	// A new device started with the key: its store is encrypted from the
	// first write, and a restart reads it back.
	f := startNode(t, "fresh", "--encryption-key-env", envVar)
	fc := f.client()
	if _, err := fc.Put(ctx, "notes", "f1", map[string]json.RawMessage{"body": json.RawMessage(fmt.Sprintf("%q", marker))}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.log.String(), "migration started") {
		t.Fatal("a new store was migrated")
	}
	f.stop()
	f.start()
	if r, err := fc.Get(ctx, "notes", "f1"); err != nil || !strings.Contains(fieldsOf(t, r), marker) {
		t.Fatalf("f1 after restart: %+v %v", r, err)
	}
	f.stop()
	if n := filesHolding(t, filepath.Join(f.dir, "store"), marker); n != 0 {
		t.Fatalf("%d files of the new encrypted store hold plaintext", n)
	}
}

// filesHolding counts the files under dir holding marker.
func filesHolding(t *testing.T, dir, marker string) int {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Logf("%s holds the marker", p)
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dirState describes dir's files (names, sizes, contents' hash).
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %x\n", p, fi.Size(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
