package secure

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7400": true, "127.1.2.3:0": true, "[::1]:7400": true, "localhost:1": true,
		"0.0.0.0:7400": false, ":7400": false, "[::]:7400": false, "10.0.0.5:7400": false,
		"example.com:80": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTokenCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", TokenFile)
	tok, err := LoadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 2*tokenBytes {
		t.Fatalf("token %q: want %d hex characters", tok, 2*tokenBytes)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateToken(path)
	if err != nil || again != tok {
		t.Fatalf("second load = %q, %v; want the same token", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("world-readable token accepted: %v", err)
	}
}

func TestRequireBearer(t *testing.T) {
	var refused []string
	h := RequireBearer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		"s3cr3t-token-0123456789", func(r *http.Request, reason string) { refused = append(refused, reason) })
	for _, c := range []struct {
		auth string
		code int
	}{
		{"", 401},
		{"Basic abc", 401},
		{"Bearer wrong", 401},
		{"Bearer s3cr3t-token-012345678", 401},
		{"Bearer s3cr3t-token-0123456789", 200},
		{"bearer s3cr3t-token-0123456789", 200},
	} {
		req := httptest.NewRequest("GET", "/v1/status", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("Authorization %q: status %d, want %d", c.auth, rec.Code, c.code)
		}
		if c.code == 401 && (!strings.Contains(rec.Body.String(), `"error"`) || rec.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("Authorization %q: 401 without a JSON error or WWW-Authenticate: %q", c.auth, rec.Body.String())
		}
	}
	if len(refused) != 4 {
		t.Errorf("onRefused called %d times, want 4: %v", len(refused), refused)
	}
}
