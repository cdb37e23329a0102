package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/client"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/secure"
)

// TestHubAPIConfig: the hub API's address from flags and file, and
// its base URL (config.TestHubAPIConfig checks the accepted forms).
func TestHubAPIConfig(t *testing.T) {
	c, err := ParseArgs([]string{"--hub-api", "127.0.0.1:7500", "--hub-api-token-file", "/t"}, os.Stderr)
	if err != nil || c.HubAPI != "127.0.0.1:7500" || c.HubAPITokenFile != "/t" {
		t.Fatalf("flags: %+v %v", c, err)
	}
	if _, err := ParseArgs([]string{"--hub-api", "nope"}, os.Stderr); err == nil || !strings.HasPrefix(err.Error(), "--hub-api") {
		t.Fatalf("bad --hub-api: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("hub_api = \"https://hub:7500\"\nhub_api_token_file = \"/tok\"\n"), 0o644)
	c = DefaultConfig()
	if err := c.LoadFile(path); err != nil || c.HubAPI != "https://hub:7500" || c.HubAPITokenFile != "/tok" {
		t.Fatalf("file: %+v %v", c, err)
	}
	a := &Agent{cfg: c}
	rp := &running{a: a}
	if got := a.hubAPIBase(rp); got != "https://hub:7500" {
		t.Errorf("base %q", got)
	}
	a.cfg.HubAPI = "127.0.0.1:1/"
	if got := a.hubAPIBase(rp); got != "http://127.0.0.1:1" {
		t.Errorf("base %q", got)
	}
	a.cfg.HubAPI = ""
	if got := a.hubAPIBase(rp); got != "" { // no gossip: none learned
		t.Errorf("base %q", got)
	}
	for addr, want := range map[string]string{"127.0.0.1:7400": "127.0.0.1:7400", "127.0.0.1:0": "", "[::1]:7400": "[::1]:7400"} {
		a.cfg.APIAddr = addr
		if got := a.advertisedAPI(); got != want {
			t.Errorf("advertised %q for %s, want %q", got, addr, want)
		}
	}
}

// An online read reaches a hub whose API is off loopback: mutual TLS
// with the device's certificate, and the hub's bearer token.
func TestOnlineReadMutualTLSHub(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub", "dev": "device"})
	hcfg := withTLS(testConfig(t, "hub"), pki, "hub")
	hub, _ := runAgent(t, hcfg)
	hub.write(t, "jobs", "j1", "title", "on the hub")

	// The hub's handler as it is served off loopback (see
	// TestClientTokenAndMutualTLSAPI): TLS and the token.
	off := hcfg
	off.APIAddr = "0.0.0.0:7400"
	off.DataDir = t.TempDir()
	sec, err := authz.NewSecurity(off, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: apiHandler(sec, hub, hub.routes())}
	go srv.Serve(sec.APIListener(ln))
	t.Cleanup(func() { srv.Close() })

	dcfg := withTLS(testConfig(t, "device"), pki, "dev")
	dcfg.HubAPI = "https://" + ln.Addr().String()
	dev, _ := runAgent(t, dcfg)
	ctx := context.Background()
	var ae *client.APIError
	if _, err := client.New(dev.APIAddr()).GetOnline(ctx, "jobs", "j1"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("without the hub's token: %v, want 401 from the hub", err)
	}
	dcfg2 := withTLS(testConfig(t, "device"), pki, "dev")
	dcfg2.HubAPI = dcfg.HubAPI
	dcfg2.HubAPITokenFile = filepath.Join(off.DataDir, secure.TokenFile)
	dev2, _ := runAgent(t, dcfg2)
	r, err := client.New(dev2.APIAddr()).GetOnline(ctx, "jobs", "j1")
	if err != nil || !r.Online || string(r.Fields["title"]) != `"on the hub"` {
		t.Fatalf("online read over mutual TLS: %+v %v", r, err)
	}
	// A device without a certificate is refused by the hub's TLS.
	plain := testConfig(t, "device")
	plain.ClusterID = "acme"
	plain.HubAPI = dcfg.HubAPI
	nocert, _ := runAgent(t, plain)
	if _, err := client.New(nocert.APIAddr()).GetOnline(ctx, "jobs", "j1"); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("without a certificate: %v, want 503", err)
	}
}
