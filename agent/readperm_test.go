package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/client"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// readCluster is a TLS cluster: a hub whose rules let tech (an exact
// node id) read jobs:status, and lead read jobs whole.
type readCluster struct {
	pki             string
	hub, tech, lead *Agent
	hubLog          *logSink
}

const (
	techID = hlc.NodeID(0x0d000000000000a1)
	leadID = hlc.NodeID(0x0e000000000000b1)
)

func newReadCluster(t *testing.T, hubOpts ...func(*Config)) *readCluster {
	t.Helper()
	c := &readCluster{pki: tlsCluster(t, map[string]string{"hub": "hub"})}
	for name, id := range map[string]hlc.NodeID{"tech": techID, "lead": leadID} {
		if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: c.pki, Name: name, NodeID: uint64(id)}); err != nil {
			t.Fatal(err)
		}
	}
	hcfg := withTLS(testConfig(t, "hub"), c.pki, "hub")
	hcfg.Security.Permissions = []Permission{
		{Name: "techs", Nodes: []string{techID.String()}, Write: []string{"jobs:status"}, Read: []string{"jobs:status"}, ReadSet: true},
		{Name: "leads", Nodes: []string{leadID.String()}, Write: []string{"jobs"}, Read: []string{"jobs"}, ReadSet: true},
	}
	for _, o := range hubOpts {
		o(&hcfg)
	}
	c.hub, c.hubLog = runAgent(t, hcfg)
	lcfg := withTLS(testConfig(t, "device"), c.pki, "lead")
	lcfg.Hubs = []string{c.hub.syncAddr()}
	c.lead, _ = runAgent(t, lcfg)
	tcfg := withTLS(testConfig(t, "device"), c.pki, "tech")
	tcfg.Hubs = []string{c.hub.syncAddr(), c.lead.syncAddr()}
	tcfg.HubAPI = c.hub.APIAddr()
	c.tech, _ = runAgent(t, tcfg)
	return c
}

// fieldNames returns the fields a's store shows of table/id ("" if it
// shows none).
func (a *Agent) fieldNames(table, id string) string {
	a.cur.RLock()
	defer a.cur.RUnlock()
	rec, err := a.cur.Get().store.Get(table, id)
	if err != nil {
		return ""
	}
	var names []string
	for _, f := range rec.Fields {
		names = append(names, f.Name)
	}
	return fmt.Sprint(names)
}

// TestReadPermissionsCluster: the device allowed jobs:status holds only
// that after syncing, from the hub and from a peer device (which knows
// its rules from the hub's grant); its online reads through the hub hide
// the same; it holds only its own sync errors.
func TestReadPermissionsCluster(t *testing.T) {
	c := newReadCluster(t)
	hub, tech, lead := c.hub, c.tech, c.lead
	hub.write(t, "jobs", "j1", "status", "open")
	hub.write(t, "jobs", "j1", "notes", "gate code 1234")
	hub.write(t, "customers", "c1", "name", "ACME")
	for _, d := range []*Agent{lead, tech, lead} {
		if f := d.syncT(t); len(f) > 0 {
			t.Fatal(f)
		}
	}
	if got := tech.fieldNames("jobs", "j1"); got != "[status]" {
		t.Fatalf("tech holds j1 fields %s", got)
	}
	if tech.has("customers", "c1") {
		t.Fatal("tech holds a customer")
	}
	if got := lead.fieldNames("jobs", "j1"); got != "[notes status]" {
		t.Fatalf("lead holds j1 fields %s", got)
	}

	// A write rejected for tech names tech: its error reaches tech, not
	// lead; lead's rejected write reaches lead only.
	tech.write(t, "jobs", "j1", "notes", "tech was here")
	lead.write(t, "customers", "c9", "name", "nope")
	for _, d := range []*Agent{tech, lead, tech, lead} {
		if f := d.syncT(t); len(f) > 0 {
			t.Fatal(f)
		}
	}
	if errs := tech.syncErrors(t, "permission"); len(errs) != 1 {
		t.Fatalf("tech's sync errors %q", errs)
	}
	errRecs := func(a *Agent) int {
		a.cur.RLock()
		defer a.cur.RUnlock()
		page, _, err := a.cur.Get().store.Scan(errorTable, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(page)
	}
	if n, m := errRecs(tech), errRecs(lead); n != 1 || m != 1 {
		t.Fatalf("error records: tech holds %d, lead %d (want 1 each: their own)", n, m)
	}
	if n := errRecs(hub); n != 2 {
		t.Fatalf("the hub holds %d error records", n)
	}

	// From the peer device: lead makes a job tech meets there first.
	lead.write(t, "jobs", "j2", "status", "new")
	lead.write(t, "jobs", "j2", "notes", "lead's secret")
	if f := tech.syncT(t); len(f) > 0 {
		t.Fatal(f)
	}
	if got := tech.fieldNames("jobs", "j2"); got != "[status]" {
		rules, ok := lead.cur.Get().a.sec.GrantRules(techID, time.Now())
		t.Fatalf("tech holds j2 fields %q after meeting lead (lead knows tech's rules: %v %v)\nhub log:\n%s", got, rules, ok, c.hubLog.buf.String())
	}

	// A device no rule names has no grant: lead serves it only the
	// system tables (it would hold lead's own jobs otherwise).
	const strangerID = hlc.NodeID(0x0f00000000000001)
	if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: c.pki, Name: "stranger", NodeID: uint64(strangerID)}); err != nil {
		t.Fatal(err)
	}
	scfg := withTLS(testConfig(t, "device"), c.pki, "stranger")
	scfg.Hubs = []string{lead.syncAddr()}
	stranger, _ := runAgent(t, scfg)
	if f := stranger.syncT(t); len(f) > 0 {
		t.Fatal(f)
	}
	if stranger.has("jobs", "j2") || stranger.has("jobs", "j1") {
		t.Fatal("a device whose grant is unknown got jobs from a device peer")
	}
	plain, _ := runAgent(t, testConfig(t, "device"))
	if lim, ok := extOf[*authz.Ext](plain.cur.Get()).Reads().PeerLimit(replication.Peer{Node: strangerID, Role: "device"}); ok {
		t.Fatalf("a device of a cluster without permissions limits its peers: %s", lim)
	}

	// Online: tech reads through the hub's API what it may read offline.
	code, body := getOnline(t, tech, "/v1/tables/jobs/records/j1?online=true")
	if code != http.StatusOK || !strings.Contains(body, `"status":"open"`) || strings.Contains(body, "notes") || strings.Contains(body, "gate code") {
		t.Fatalf("online j1: %d %s", code, body)
	}
	if code, body := getOnline(t, tech, "/v1/tables/customers/records/c1?online=true"); code != http.StatusNotFound {
		t.Fatalf("online customer: %d %s, want 404", code, body)
	}
	if code, body := getOnline(t, tech, "/v1/tables/jobs/records?online=true"); code != http.StatusOK || strings.Contains(body, "secret") || strings.Contains(body, "gate code") || !strings.Contains(body, `"status":"open"`) {
		t.Fatalf("online jobs: %d %s", code, body)
	}
	// The hub's own API, without a node id, reads everything.
	if code, body := getOnline(t, hub, "/v1/tables/jobs/records/j1"); code != http.StatusOK || !strings.Contains(body, "gate code") {
		t.Fatalf("hub j1: %d %s", code, body)
	}
}

func getOnline(t *testing.T, a *Agent, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.APIAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tlsHTTPClient is an HTTP client presenting name's certificate.
func tlsHTTPClient(t *testing.T, pki, name string) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(pki, secure.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}}}
}

// TestReadGuardMutualTLS: the hub's API served over mutual TLS (off
// loopback) identifies a device by its certificate: fields it may not
// read are left out, other tables are 404, other routes 403, and the
// device may not claim another node's id; a hub certificate reads all.
func TestReadGuardMutualTLS(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub", "ops": "hub"})
	if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: pki, Name: "tech", NodeID: uint64(techID)}); err != nil {
		t.Fatal(err)
	}
	cfg := withTLS(testConfig(t, "hub"), pki, "hub")
	cfg.Security.Permissions = []Permission{{Name: "techs", Nodes: []string{techID.String()}, Read: []string{"jobs:status"}, ReadSet: true}}
	a, _ := runAgent(t, cfg)
	a.write(t, "jobs", "j1", "status", "open")
	a.write(t, "jobs", "j1", "notes", "secret")
	a.write(t, "customers", "c1", "name", "ACME")

	off := cfg
	off.APIAddr = "0.0.0.0:7400" // never bound: only to build the off-loopback handler
	off.DataDir = t.TempDir()
	sec, err := authz.NewSecurity(off, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
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
	t.Setenv(client.EnvTokenFile, filepath.Join(off.DataDir, secure.TokenFile))
	as := func(name string) *client.Client {
		t.Setenv(client.EnvCert, filepath.Join(pki, name+".crt"))
		t.Setenv(client.EnvKey, filepath.Join(pki, name+".key"))
		return client.New(addr)
	}
	var ae *client.APIError
	tech := as("tech")
	r, err := tech.Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Fields) != 1 || r.Fields["status"] == nil {
		t.Fatalf("tech reads j1 %v", r.Fields)
	}
	page, err := tech.List(ctx, "jobs", "", 10)
	if err != nil || len(page.Records) != 1 || len(page.Records[0].Fields) != 1 {
		t.Fatalf("tech lists jobs %+v %v", page, err)
	}
	if _, err := tech.Get(ctx, "customers", "c1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("tech reads a customer: %v, want 404", err)
	}
	if _, err := tech.Status(ctx); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("tech reads the status: %v, want 403", err)
	}
	ops := as("ops")
	if r, err := ops.Get(ctx, "jobs", "j1"); err != nil || len(r.Fields) != 2 {
		t.Fatalf("a hub certificate reads j1 %v %v", r, err)
	}
	// A claimed node id the certificate does not bind is refused.
	req, _ := http.NewRequest(http.MethodGet, "/v1/tables/jobs/records/j1", nil)
	req.Header.Set(nodeHeader, leadID.String())
	if _, _, err := authz.APIReader(req, nodeHeader); err != nil {
		t.Fatalf("without TLS a claimed id is taken: %v", err)
	}
	t.Setenv(client.EnvCert, filepath.Join(pki, "tech.crt"))
	t.Setenv(client.EnvKey, filepath.Join(pki, "tech.key"))
	hc := tlsHTTPClient(t, pki, "tech")
	req, _ = http.NewRequest(http.MethodGet, addr+"/v1/tables/jobs/records/j1", nil)
	req.Header.Set(nodeHeader, leadID.String())
	tok, _ := secure.LoadOrCreateToken(filepath.Join(off.DataDir, secure.TokenFile))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tech claiming lead's id: %d, want 403", resp.StatusCode)
	}
}

// TestReadPermissionsWithProfile: a device's offline profile is narrowed
// to its read rules: a table it may not read, and a table whose filter
// reads a field it may not read, are left out; a filter over readable
// fields stays, over the projected records. The hub's preview counts the
// same.
func TestReadPermissionsWithProfile(t *testing.T) {
	pki := tlsCluster(t, map[string]string{"hub": "hub"})
	if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: pki, Name: "tech", NodeID: uint64(techID)}); err != nil {
		t.Fatal(err)
	}
	profiles := filepath.Join(t.TempDir(), "profiles.hcl")
	if err := os.WriteFile(profiles, []byte(fmt.Sprintf(`
profile "tech" {
  table "jobs" { filter = "status == 'open'" }
  table "notes" { filter = "owner == 'tech'" }
  table "customers" {}
}
device %q { profile = "tech" }
`, techID.String())), 0o644); err != nil {
		t.Fatal(err)
	}
	hcfg := withTLS(testConfig(t, "hub"), pki, "hub")
	hcfg.Profiles = profiles
	hcfg.Security.Permissions = []Permission{{Name: "techs", Nodes: []string{techID.String()}, Write: []string{"jobs:status"}, Read: []string{"jobs:status", "notes:body"}, ReadSet: true}}
	hub, hubLog := runAgent(t, hcfg)
	hub.write(t, "jobs", "j1", "status", "open")
	hub.write(t, "jobs", "j1", "price", "90")
	hub.write(t, "jobs", "j2", "status", "closed")
	hub.write(t, "notes", "n1", "owner", "tech")
	hub.write(t, "notes", "n1", "body", "hello")
	hub.write(t, "customers", "c1", "name", "ACME")
	tcfg := withTLS(testConfig(t, "device"), pki, "tech")
	tcfg.Hubs = []string{hub.syncAddr()}
	tech, _ := runAgent(t, tcfg)
	for range 2 {
		if f := tech.syncT(t); len(f) > 0 {
			t.Fatal(f)
		}
	}
	if got := tech.fieldNames("jobs", "j1"); got != "[status]" {
		t.Fatalf("tech holds j1 fields %s", got)
	}
	for _, k := range [][2]string{{"jobs", "j2"}, {"notes", "n1"}, {"customers", "c1"}} {
		if tech.has(k[0], k[1]) {
			t.Fatalf("tech holds %s/%s", k[0], k[1])
		}
	}
	waitLog(t, hubLog, "a table of the device's profile is left out")
	code, body := getOnline(t, hub, "/v1/profiles/preview?device="+techID.String())
	if code != http.StatusOK || !strings.Contains(body, `"table":"jobs","records":1`) || strings.Contains(body, "notes") || strings.Contains(body, "customers") {
		t.Fatalf("preview: %d %s", code, body)
	}
}
