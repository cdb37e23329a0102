package secure

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the name of the API token file in the data directory.
const TokenFile = "api-token"

// tokenBytes is the token's entropy (hex-encoded in the file).
const tokenBytes = 32

// IsLoopback reports whether addr (host:port) binds only the loopback
// interface: 127.0.0.0/8, ::1 or "localhost". An empty host, 0.0.0.0 and
// :: bind every interface and are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadOrCreateToken returns the token stored in path, creating it (random,
// mode 0600) if the file does not exist. An existing file readable by
// group or others is refused: the token would not be secret.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("api token %s has mode %v: want 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("api token %s: shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("api token: %w", err)
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return tok, f.Close()
}

// RequireBearer wraps h so that every request must carry
// "Authorization: Bearer TOKEN"; others get 401 with a JSON error and a
// WWW-Authenticate header. Tokens are compared in constant time.
// onRefused, if set, is called for each refused request.
func RequireBearer(h http.Handler, token string, onRefused func(r *http.Request, reason string)) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := ""
		auth := r.Header.Get("Authorization")
		scheme, got, ok := strings.Cut(auth, " ")
		switch {
		case auth == "":
			reason = "no bearer token"
		case !ok || !strings.EqualFold(scheme, "Bearer"):
			reason = "authorization is not a bearer token"
		case subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1:
			reason = "wrong bearer token"
		}
		if reason == "" {
			h.ServeHTTP(w, r)
			return
		}
		if onRefused != nil {
			onRefused(r, reason)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="replicad"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "{\"error\":%q}\n", reason+": this API is not on loopback; send Authorization: Bearer TOKEN (the token is in the data directory's "+TokenFile+" file; the CLI reads $REPLICAD_TOKEN or $REPLICAD_TOKEN_FILE)")
	})
}
