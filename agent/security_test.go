package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/client"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/secure"
)

// logSink collects an agent's log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func testConfig(t *testing.T, role string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Role = role
	cfg.APIAddr, cfg.SyncAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "off"
	cfg.PullInterval = time.Hour
	return cfg
}

// runAgent starts an agent and stops it at the end of the test.
func runAgent(t *testing.T, cfg Config) (*Agent, *logSink) {
	t.Helper()
	sink := &logSink{}
	log := hclog.New(&hclog.LoggerOptions{Output: sink, Level: hclog.Debug})
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	})
	return a, sink
}

func (a *Agent) syncAddr() string {
	a.cur.RLock()
	defer a.cur.RUnlock()
	return a.cur.Get().syncLn.Addr().String()
}

func TestAPITokenRequired(t *testing.T) {
	cfg := testConfig(t, "device")
	cfg.Security.APIAuth = APIAuthToken
	a, logs := runAgent(t, cfg)
	tokPath := filepath.Join(cfg.DataDir, secure.TokenFile)
	fi, err := os.Stat(tokPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	tok, _ := os.ReadFile(tokPath)
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/v1/status", "/v1/tables/t/records/x", "/metrics", "/", "/v1/security"} {
		if c := get(p, ""); c != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", p, c)
		}
		if c := get(p, "wrong-token-wrong-token"); c != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, c)
		}
	}
	if c := get("/v1/status", strings.TrimSpace(string(tok))); c != 200 {
		t.Errorf("GET /v1/status with the token: %d", c)
	}
	if !logs.has("api request refused") {
		t.Error("refused requests not logged")
	}
}

// An API bound off loopback needs the token even with api_auth = auto;
// on loopback it does not.
func TestAPITokenAutoOffLoopback(t *testing.T) {
	cfg := testConfig(t, "device")
	cfg.APIAddr = "0.0.0.0:7400" // not bound: newSecurity only decides
	s, err := authz.NewSecurity(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if s.Token == "" {
		t.Fatal("an API on 0.0.0.0 needs no token")
	}
	cfg.APIAddr = "127.0.0.1:7400"
	cfg.DataDir = t.TempDir()
	if s, err = authz.NewSecurity(cfg, hclog.NewNullLogger()); err != nil || s.Token != "" {
		t.Fatalf("loopback API: token %q, %v", s.Token, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, secure.TokenFile)); err == nil {
		t.Error("a token file was created for a loopback API")
	}
}

func TestSecurityConfigFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("api_auth = \"token\"\ntls_ca = \"ca\"\ntls_cert = \"c\"\ntls_key = \"k\"\ngossip_keyring = \"kr\"\n"), 0o644)
	c, err := ParseArgs([]string{"--config", path, "--tls-revoked", "rev"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := SecurityConfig{APIAuth: "token", TLSCA: "ca", TLSCert: "c", TLSKey: "k", TLSRevoked: "rev", GossipKeyring: "kr"}
	if !reflect.DeepEqual(c.Security, want) {
		t.Errorf("got %+v, want %+v", c.Security, want)
	}
	for _, args := range [][]string{{"--api-auth", "none"}, {"--tls-cert", "x"}, {"--tls-revoked", "r"}} {
		if _, err := ParseArgs(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// tlsCluster makes a PKI for cluster acme with the named certificates.
func tlsCluster(t *testing.T, certs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := secure.CreateCA(secure.CAOptions{Dir: dir, Cluster: "acme"}); err != nil {
		t.Fatal(err)
	}
	for name, role := range certs {
		if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: dir, Name: name, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func withTLS(cfg Config, dir, name string) Config {
	cfg.ClusterID = "acme"
	cfg.Security.TLSCA = filepath.Join(dir, secure.CACertFile)
	cfg.Security.TLSCert = filepath.Join(dir, name+".crt")
	cfg.Security.TLSKey = filepath.Join(dir, name+".key")
	cfg.Security.TLSRevoked = filepath.Join(dir, secure.RevokedFile)
	return cfg
}

func (a *Agent) write(t *testing.T, table, id, field string, v any) {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	b, _ := json.Marshal(v)
	val, err := crdt.ValueFromJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.cur.Get().localWrite(table, id, []crdt.FieldValue{{Name: field, Value: val}}, false); err != nil {
		t.Fatal(err)
	}
}

func (a *Agent) syncT(t *testing.T) (failed []string) {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return a.cur.Get().engine.SyncNow(ctx, nil).Failed
}

func (a *Agent) has(table, id string) bool {
	a.cur.RLock()
	defer a.cur.RUnlock()
	rec, err := a.cur.Get().store.Get(table, id)
	return err == nil && rec != nil
}

func TestTLSCluster(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub", "dev1": "device", "lost": "device"})
	hub, hubLogs := runAgent(t, withTLS(testConfig(t, "hub"), pki, "hub"))
	dcfg := withTLS(testConfig(t, "device"), pki, "dev1")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, _ := runAgent(t, dcfg)

	// Node ids are drawn under the certificates' bindings.
	for _, a := range []*Agent{hub, dev} {
		if err := a.sec.CheckNode(a.cur.Get().node); err != nil {
			t.Fatal(err)
		}
	}
	dev.write(t, "jobs", "j1", "title", "fix pump")
	if f := dev.syncT(t); len(f) > 0 {
		t.Fatalf("TLS sync failed: %v", f)
	}
	if !hub.has("jobs", "j1") {
		t.Fatal("the hub lacks the device's write after a TLS sync")
	}

	// A device of another CA (same cluster name) is refused and logged.
	other := tlsCluster(t, map[string]string{"intruder": "device"})
	icfg := withTLS(testConfig(t, "device"), other, "intruder")
	icfg.Hubs = []string{hub.syncAddr()}
	in, inLogs := runAgent(t, icfg)
	in.write(t, "jobs", "evil", "title", "x")
	if f := in.syncT(t); len(f) == 0 {
		t.Fatal("a device of another CA synced with the hub")
	}
	if hub.has("jobs", "evil") {
		t.Fatal("the hub applied a write from a device of another CA")
	}
	// Each side refuses the other's certificate (the intruder's, verifying
	// first, aborts the handshake; secure's tests show the hub's check
	// against a peer that verifies nothing).
	waitLog(t, inLogs, "not signed by this cluster's CA")
	waitLog(t, hubLogs, "incoming session failed")

	// A plain-TCP device (no certificate) is refused.
	pcfg := testConfig(t, "device")
	pcfg.ClusterID = "acme"
	pcfg.Hubs = []string{hub.syncAddr()}
	plain, _ := runAgent(t, pcfg)
	plain.write(t, "jobs", "plain", "title", "x")
	if f := plain.syncT(t); len(f) == 0 {
		t.Fatal("a device without TLS synced with a TLS hub")
	}
	if hub.has("jobs", "plain") {
		t.Fatal("the hub applied a write from a device without a certificate")
	}

	// Revoking a certificate takes effect without a restart.
	lcfg := withTLS(testConfig(t, "device"), pki, "lost")
	lcfg.Hubs = []string{hub.syncAddr()}
	lost, _ := runAgent(t, lcfg)
	lost.write(t, "jobs", "before", "title", "x")
	if f := lost.syncT(t); len(f) > 0 {
		t.Fatalf("before revocation: %v", f)
	}
	cert, err := os.ReadFile(lcfg.Security.TLSCert)
	if err != nil {
		t.Fatal(err)
	}
	serial := serialOf(t, cert)
	f, _ := os.OpenFile(filepath.Join(pki, secure.RevokedFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(serial + "\n")
	f.Close()
	lost.write(t, "jobs", "after", "title", "x")
	if f := lost.syncT(t); len(f) == 0 {
		t.Fatal("a revoked device synced")
	}
	if hub.has("jobs", "after") {
		t.Fatal("the hub applied a write from a revoked device")
	}
	waitLog(t, hubLogs, "is revoked")
	// The valid device still syncs.
	dev.write(t, "jobs", "j2", "title", "y")
	if f := dev.syncT(t); len(f) > 0 || !hub.has("jobs", "j2") {
		t.Fatalf("the valid device after a revocation: %v", f)
	}
}

func serialOf(t *testing.T, pemBytes []byte) string {
	t.Helper()
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return secure.SerialString(c.SerialNumber)
}

func waitLog(t *testing.T, l *logSink, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !l.has(s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A store whose node id the certificate does not bind is refused.
func TestTLSStoreNodeMismatch(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"a": "device", "b": "device"})
	cfg := withTLS(testConfig(t, "device"), pki, "a")
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	a.closeAll()
	cfg = withTLS(cfg, pki, "b") // same data dir, another certificate
	if _, err := New(cfg, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("a store under another certificate: %v", err)
	}
	// A certificate of the wrong role is refused too.
	cfg.Role = "hub"
	cfg.DataDir = t.TempDir()
	if _, err := New(withTLS(cfg, pki, "a"), hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("a device certificate on a hub: %v", err)
	}
}

// The Go client (and so the CLI) sends the token from the environment,
// and speaks mutual TLS to an API that is off loopback with TLS on.
func TestClientTokenAndMutualTLSAPI(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub", "ops": "device"})
	cfg := withTLS(testConfig(t, "hub"), pki, "hub")
	a, _ := runAgent(t, cfg)

	// The same agent's handler, as it is served when the API is bound off
	// loopback (tests bind loopback only): TLS and the token.
	off := cfg
	off.APIAddr = "0.0.0.0:7400"
	off.DataDir = t.TempDir()
	sec, err := authz.NewSecurity(off, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if !sec.APITLS() || sec.Token == "" {
		t.Fatalf("off-loopback API with TLS: tls %v token %v", sec.APITLS(), sec.Token != "")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: apiHandler(sec, a, a.routes())}
	go srv.Serve(sec.APIListener(ln))
	t.Cleanup(func() { srv.Close() })
	addr := "https://" + ln.Addr().String()
	ctx := context.Background()

	t.Setenv(client.EnvCACert, filepath.Join(pki, secure.CACertFile))
	if _, err := client.New(addr).Status(ctx); err == nil {
		t.Fatal("a client without a certificate reached the mutual-TLS API")
	}
	t.Setenv(client.EnvCert, filepath.Join(pki, "ops.crt"))
	t.Setenv(client.EnvKey, filepath.Join(pki, "ops.key"))
	var ae *client.APIError
	if _, err := client.New(addr).Status(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("with a certificate, without the token: %v, want 401", err)
	}
	t.Setenv(client.EnvTokenFile, filepath.Join(off.DataDir, secure.TokenFile))
	st, err := client.New(addr).Status(ctx)
	if err != nil {
		t.Fatalf("with a certificate and the token: %v", err)
	}
	if st.Node == "" {
		t.Fatalf("status %+v", st)
	}
}

// Gossip key rotation through the API: install, use, remove; the keyring
// file follows, so a restart keeps the rotation.
func TestGossipKeyRotationAPI(t *testing.T) {
	dir := t.TempDir()
	kr := filepath.Join(dir, "gossip.keyring")
	k0, _ := secure.NewGossipKey()
	b0, _ := secure.ParseGossipKey(k0)
	if err := secure.WriteKeyring(kr, b0, nil); err != nil {
		t.Fatal(err)
	}
	old, err := secure.ReadKeyring(kr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "device")
	cfg.GossipAddr, cfg.GossipProfile = "127.0.0.1:0", "local"
	cfg.Security.GossipKeyring = kr
	a, _ := runAgent(t, cfg)
	post := func(op, key string) int {
		body, _ := json.Marshal(map[string]string{"op": op, "key": key})
		resp, err := http.Post("http://"+a.APIAddr()+"/v1/gossip/keys", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	status := func() api.SecurityStatus {
		resp, err := http.Get("http://" + a.APIAddr() + "/v1/security")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st api.SecurityStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := status(); st.Gossip == nil || st.Gossip.Primary != secure.KeyFingerprint(old[0]) {
		t.Fatalf("status %+v", st)
	}
	nk, _ := secure.NewGossipKey()
	newKey, _ := secure.ParseGossipKey(nk)
	oldB64 := base64.StdEncoding.EncodeToString(old[0])
	if c := post("use", nk); c != http.StatusConflict {
		t.Errorf("use before install: %d, want 409", c)
	}
	if c := post("install", nk); c != 200 {
		t.Fatalf("install: %d", c)
	}
	if keys, _ := secure.ReadKeyring(kr); len(keys) != 2 || !bytes.Equal(keys[0], old[0]) {
		t.Fatalf("keyring after install: %d keys", len(keys))
	}
	if c := post("use", nk); c != 200 {
		t.Fatalf("use: %d", c)
	}
	if c := post("remove", nk); c != http.StatusConflict {
		t.Errorf("removing the primary key: %d, want 409", c)
	}
	if c := post("remove", oldB64); c != 200 {
		t.Fatalf("remove: %d", c)
	}
	keys, err := secure.ReadKeyring(kr)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0], newKey) {
		t.Fatalf("keyring after rotation: %v %v", keys, err)
	}
	if st := status(); st.Gossip.Primary != secure.KeyFingerprint(newKey) || len(st.Gossip.Keys) != 1 {
		t.Fatalf("status after rotation %+v", st.Gossip)
	}
	for _, bad := range []string{`{"op":"install","key":"short"}`, `{"op":"drop","key":"` + nk + `"}`, `{"op":"install"}`, `not json`} {
		resp, err := http.Post("http://"+a.APIAddr()+"/v1/gossip/keys", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
