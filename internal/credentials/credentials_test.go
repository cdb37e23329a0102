package credentials

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/secure"
)

// testConfig is a loopback configuration with its data under a fresh
// directory.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.APIAddr = "127.0.0.1:0"
	cfg.SyncAddr = "127.0.0.1:0"
	return cfg
}

// TestLoadToken: the API token is created when the API needs one and
// absent otherwise; a token file readable by others or too short is a
// clear error naming the problem.
func TestLoadToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apiAddr string
		auth    string
		file    string      // token file content ("" = none)
		mode    os.FileMode // its mode
		wantTok bool
		wantErr string
	}{
		{name: "loopback, auto: no token", apiAddr: "127.0.0.1:0", wantTok: false},
		{name: "loopback, api_auth token: created", apiAddr: "127.0.0.1:0", auth: config.APIAuthToken, wantTok: true},
		{name: "off loopback: created", apiAddr: "0.0.0.0:0", wantTok: true},
		{name: "existing token read", apiAddr: "0.0.0.0:0", file: "0123456789abcdef0123\n", mode: 0o600, wantTok: true},
		{name: "world-readable token refused", apiAddr: "0.0.0.0:0", file: "0123456789abcdef0123\n", mode: 0o644, wantErr: "want 0600"},
		{name: "group-readable token refused", apiAddr: "0.0.0.0:0", file: "0123456789abcdef0123\n", mode: 0o640, wantErr: "want 0600"},
		{name: "empty token refused", apiAddr: "0.0.0.0:0", file: "\n", mode: 0o600, wantErr: "shorter than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.APIAddr = tc.apiAddr
			cfg.Security.APIAuth = tc.auth
			path := filepath.Join(cfg.DataDir, secure.TokenFile)
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			c, err := Load(cfg, hclog.NewNullLogger())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Token != ""; got != tc.wantTok {
				t.Fatalf("token loaded %v, want %v", got, tc.wantTok)
			}
			if st := c.Status(); st.APIToken != tc.wantTok {
				t.Fatalf("Status().APIToken = %v, want %v", st.APIToken, tc.wantTok)
			}
			if tc.file != "" && c.Token != strings.TrimSpace(tc.file) {
				t.Fatalf("token %q, want the file's %q", c.Token, strings.TrimSpace(tc.file))
			}
			if tc.wantTok && tc.file == "" {
				b, err := os.ReadFile(path)
				if err != nil || strings.TrimSpace(string(b)) != c.Token {
					t.Fatalf("token file %q (%v), want the loaded token %q", b, err, c.Token)
				}
			}
		})
	}
}

// TestLoadInsecure: sync off loopback without TLS is refused unless
// insecure is set, and the status then says so.
func TestLoadInsecure(t *testing.T) {
	cfg := testConfig(t)
	cfg.SyncAddr = "0.0.0.0:0"
	if _, err := Load(cfg, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("Load off loopback without TLS: %v, want a refusal", err)
	}
	cfg.Security.Insecure = true
	c, err := Load(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); !st.Insecure || st.TLS != nil || st.APITLS || st.Gossip != nil {
		t.Fatalf("status %+v, want insecure with no TLS and no gossip keyring", st)
	}
	if c.HasTLS() || c.Keyring() != nil || c.NewNodeID() != 0 || c.CheckNode(42) != nil {
		t.Fatal("without TLS: want no identity, no keyring, a random node id and any node id allowed")
	}
}

func newKey(t *testing.T) string {
	t.Helper()
	k, err := secure.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fingerprint(t *testing.T, k string) string {
	t.Helper()
	b, err := secure.ParseGossipKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return secure.KeyFingerprint(b)
}

// loadKeyring loads credentials whose gossip keyring file holds key k.
func loadKeyring(t *testing.T, k string) (*Credentials, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Security.GossipKeyring = filepath.Join(cfg.DataDir, "keyring")
	b, _ := secure.ParseGossipKey(k)
	if err := secure.WriteKeyring(cfg.Security.GossipKeyring, b, [][]byte{b}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg.Security.GossipKeyring
}

// fileKeys returns the fingerprints of the keys in the keyring file.
func fileKeys(t *testing.T, path string) []string {
	t.Helper()
	keys, err := secure.ReadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, secure.KeyFingerprint(k))
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		if m[x] == 0 {
			return false
		}
		m[x]--
	}
	return true
}

// TestRotate: a rotation installs a new key next to the old one (the old
// stays primary until "use"), switches the primary on "use", drops the
// old key only on "remove", refuses to remove the primary, and rewrites
// the keyring file each time so that a restart keeps the change; the
// status reports the keyring in memory.
func TestRotate(t *testing.T) {
	oldK, newK := newKey(t), newKey(t)
	oldF, newF := fingerprint(t, oldK), fingerprint(t, newK)
	c, path := loadKeyring(t, oldK)
	if st := c.Status(); st.Gossip == nil || st.Gossip.Primary != oldF || !sameSet(st.Gossip.Keys, []string{oldF}) {
		t.Fatalf("loaded status %+v, want primary %s alone", st.Gossip, oldF)
	}
	for i, step := range []struct {
		op, key     string
		wantCode    int // 0: success
		wantPrimary string
		wantKeys    []string
	}{
		{op: "install", key: newK, wantPrimary: oldF, wantKeys: []string{oldF, newF}},
		{op: "remove", key: oldK, wantCode: http.StatusConflict, wantPrimary: oldF, wantKeys: []string{oldF, newF}},
		{op: "use", key: newK, wantPrimary: newF, wantKeys: []string{oldF, newF}},
		{op: "rotate", key: newK, wantCode: http.StatusBadRequest, wantPrimary: newF, wantKeys: []string{oldF, newF}},
		{op: "install", key: "not base64!", wantCode: http.StatusBadRequest, wantPrimary: newF, wantKeys: []string{oldF, newF}},
		{op: "remove", key: oldK, wantPrimary: newF, wantKeys: []string{newF}},
		{op: "use", key: oldK, wantCode: http.StatusConflict, wantPrimary: newF, wantKeys: []string{newF}},
	} {
		gs, err := c.Rotate(api.GossipKeyRequest{Op: step.op, Key: step.key})
		if step.wantCode != 0 {
			var e *Error
			if !errors.As(err, &e) || e.Status() != step.wantCode {
				t.Fatalf("step %d %s: %v, want an error with status %d", i, step.op, err, step.wantCode)
			}
		} else {
			if err != nil {
				t.Fatalf("step %d %s: %v", i, step.op, err)
			}
			if gs.Primary != step.wantPrimary || !sameSet(gs.Keys, step.wantKeys) {
				t.Fatalf("step %d %s answered %+v, want primary %s keys %v", i, step.op, gs, step.wantPrimary, step.wantKeys)
			}
		}
		st := c.Status()
		if st.Gossip.Primary != step.wantPrimary || !sameSet(st.Gossip.Keys, step.wantKeys) {
			t.Fatalf("step %d %s: status %+v, want primary %s keys %v", i, step.op, st.Gossip, step.wantPrimary, step.wantKeys)
		}
		if got := secure.KeyFingerprint(c.Keyring().GetPrimaryKey()); got != step.wantPrimary {
			t.Fatalf("step %d %s: keyring primary %s, want %s", i, step.op, got, step.wantPrimary)
		}
		if got := fileKeys(t, path); !sameSet(got, step.wantKeys) || got[0] != step.wantPrimary {
			t.Fatalf("step %d %s: keyring file %v, want primary %s first, keys %v", i, step.op, got, step.wantPrimary, step.wantKeys)
		}
	}
}

// TestRotateWithoutKeyring: with gossip encryption off a rotation is a
// conflict, not a panic, and the status shows no keyring.
func TestRotateWithoutKeyring(t *testing.T) {
	c, err := Load(testConfig(t), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Rotate(api.GossipKeyRequest{Op: "install", Key: newKey(t)})
	var e *Error
	if !errors.As(err, &e) || e.Status() != http.StatusConflict || !strings.Contains(e.Msg, "--gossip-keyring") {
		t.Fatalf("Rotate without a keyring: %v, want a 409 naming --gossip-keyring", err)
	}
	if st := c.Status(); st.Gossip != nil {
		t.Fatalf("status gossip %+v, want none", st.Gossip)
	}
}

// TestLoadKeyringErrors: a keyring file missing or holding no valid key
// is a load error.
func TestLoadKeyringErrors(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"missing", ""},
		{"garbage", "not a key\n"},
		{"empty", "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Security.GossipKeyring = filepath.Join(cfg.DataDir, "keyring")
			if tc.name != "missing" {
				if err := os.WriteFile(cfg.Security.GossipKeyring, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c, err := Load(cfg, hclog.NewNullLogger()); err == nil {
				t.Fatalf("Load with a %s keyring: no error (keyring %v)", tc.name, c.Keyring())
			}
		})
	}
}
