package agent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// The key sources' tests: internal/credentials/atrest_test.go.

var testAtRestKey = bytes.Repeat([]byte{0xa7}, store.KeySize)

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

// TestAgentEncryptedStore: an agent with a key creates its store
// encrypted and says so (status, security); restarted without the key it
// refuses to start, naming the problem; with another key too; and a store
// reopened after a failure (recover.go) keeps the key.
func TestAgentEncryptedStore(t *testing.T) {
	cfg := testConfig(t, "device")
	cfg.AtRest.KeyFile = writeKeyFile(t, []byte(hex.EncodeToString(testAtRestKey)), 0o600)
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if !a.cur.Get().store.Encrypted() {
		t.Fatal("store not encrypted")
	}
	if _, err := a.cur.Get().localWrite("t", "a", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue("secret value")}}, false); err != nil {
		t.Fatal(err)
	}
	if st := a.sec.Status(); !st.AtRest {
		t.Fatalf("security status %+v", st)
	}
	// Reopen as after a failure: the key is kept.
	a.cur.Lock()
	a.cur.Get().Close()
	a.cur.Set(nil, true)
	a.cur.Unlock()
	a.cur.Recover(nil)
	if a.cur.Get() == nil || !a.cur.Get().store.Encrypted() {
		t.Fatal("the reopened store is not open, or not encrypted")
	}
	if rec, err := a.cur.Get().store.Get("t", "a"); err != nil || rec.Deleted() {
		t.Fatalf("after reopen: %v %v", rec, err)
	}
	a.closeAll()

	plain := cfg
	plain.AtRest = AtRestConfig{}
	if _, err := New(plain, hclog.NewNullLogger()); !errors.Is(err, store.ErrKeyRequired) || !strings.Contains(err.Error(), "--encryption-key-file") {
		t.Fatalf("without key: %v", err)
	}
	other := cfg
	other.AtRest.KeyFile = writeKeyFile(t, bytes.Repeat([]byte{1}, store.KeySize), 0o600)
	if _, err := New(other, hclog.NewNullLogger()); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("other key: %v", err)
	}

	// Status over the API.
	b, _ := runAgent(t, cfg)
	for path, field := range map[string]string{"/v1/status": "encrypted_at_rest", "/v1/security": "encrypted_at_rest"} {
		resp, err := http.Get("http://" + b.APIAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m[field] != true {
			t.Errorf("GET %s: %s = %v", path, field, m[field])
		}
	}
}
