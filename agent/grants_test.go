package agent

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/secure"
)

// Devices with node ids fixed by their certificates, so that rules can
// name them.
const (
	gDev1 = hlc.NodeID(0x0d00000000000001)
	gDev2 = hlc.NodeID(0x0d00000000000002)
	gDev3 = hlc.NodeID(0x0d00000000000003)
)

// grantsPKI makes the cluster's PKI: a hub, a second hub, and devices
// dev1-dev3 bound to gDev1-gDev3.
func grantsPKI(t *testing.T) string {
	t.Helper()
	pki := tlsCluster(t, map[string]string{"hub": "hub", "hub2": "hub"})
	for name, id := range map[string]hlc.NodeID{"dev1": gDev1, "dev2": gDev2, "dev3": gDev3} {
		if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: pki, Name: name, NodeID: uint64(id)}); err != nil {
			t.Fatal(err)
		}
	}
	return pki
}

// techRules: every device may write jobs:status and jobs:notes only. It
// may read payroll too, so that a forbidden payroll write relayed to it
// is in its scope (a table it may not read is held as empty, as outside
// any scope: readperm.go).
var techRules = []Permission{{Name: "techs", Nodes: []string{"0d00000000000000/8"}, Write: []string{"jobs:status", "jobs:notes"}, Read: []string{"jobs", "payroll"}, ReadSet: true}}

func grantHub(t *testing.T, pki, name string) (*Agent, *logSink) {
	t.Helper()
	cfg := withTLS(testConfig(t, "hub"), pki, name)
	cfg.Security.Permissions = techRules
	return runAgent(t, cfg)
}

func grantDevice(t *testing.T, pki, name, relay string, partners ...string) (*Agent, *logSink) {
	t.Helper()
	cfg := withTLS(testConfig(t, "device"), pki, name)
	cfg.Hubs = partners
	cfg.Security.PeerRelay = relay
	return runAgent(t, cfg)
}

func (a *Agent) mustSync(t *testing.T) {
	t.Helper()
	if f := a.syncT(t); len(f) > 0 {
		t.Fatalf("sync: %v", f)
	}
}

func (a *Agent) holds(origin hlc.NodeID, seq uint64) bool {
	a.cur.RLock()
	defer a.cur.RUnlock()
	return a.cur.Get().store.HeldOf(origin).Contains(seq)
}

func (a *Agent) writeSeq(t *testing.T, table, id, field, v string) uint64 {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	res, err := a.cur.Get().localWrite(table, id, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(v)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return res.Write.Seq
}

// A hub with TLS and permissions publishes a signed grant per rule; every
// node verifies them and learns each node's rules (grantRules); forged,
// tampered and malformed grant records are refused and logged; grants
// expire.
func TestGrantBook(t *testing.T) {
	pki := grantsPKI(t)
	hub, _ := grantHub(t, pki, "hub")
	dev, devLogs := grantDevice(t, pki, "dev1", "", hub.syncAddr())
	now := time.Now()
	if _, ok := dev.sec.GrantRules(gDev1, now); ok {
		t.Fatal("rules before any grant arrived")
	}
	dev.mustSync(t)
	perms, ok := dev.sec.GrantRules(gDev2, now)
	if !ok {
		t.Fatal("no rules for dev2 from the hub's grant")
	}
	if why := perms.Check(&crdt.Write{Origin: gDev2, Table: "jobs", Fields: []crdt.FieldValue{{Name: "status"}}}); why != "" {
		t.Fatalf("granted write refused: %s", why)
	}
	if why := perms.Check(&crdt.Write{Origin: gDev2, Table: "jobs", Fields: []crdt.FieldValue{{Name: "title"}}}); why == "" {
		t.Fatal("a write outside the grant allowed")
	}
	if tables, restricted := perms.Readable(gDev2); perms.Len() != 1 || !restricted || !hasKey(tables, "jobs") || tables["jobs"] != nil {
		t.Fatalf("read rules not carried: %d rules, readable %v (restricted %v)", perms.Len(), tables, restricted)
	}
	if _, ok := dev.sec.GrantRules(0x0e00000000000001, now); ok {
		t.Fatal("rules for a node no grant names")
	}
	// Expired: no rules (until a hub re-signs).
	if _, ok := dev.sec.GrantRules(gDev2, now.Add(secure.DefaultGrantValidity+time.Minute)); ok {
		t.Fatal("rules from an expired grant")
	}

	// Forged records in the table: a tampered copy of the hub's grant
	// (claiming every table) under another rule's record, garbage, and
	// the hub's genuine grant moved to another rule's record.
	hub.cur.RLock()
	raw := hub.cur.Get().currentGrantRaw(t, "techs")
	hubField := authz.GrantField(hub.cur.Get().node)
	hub.cur.RUnlock()
	tampered := strings.Replace(raw, "jobs:status", "payroll", 1)
	for id, v := range map[string]string{"admins": tampered, "junk": "not a grant", "moved": raw} {
		dev.cur.RLock()
		_, err := dev.cur.Get().localWrite(authz.GrantTable, id, []crdt.FieldValue{{Name: hubField, Value: crdt.MustValue(v)}}, false)
		dev.cur.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	dev.sec.Grants.Invalidate()
	if _, ok := dev.sec.GrantRules(gDev1, now); !ok {
		t.Fatal("the genuine grant stopped counting")
	}
	if p, _ := dev.sec.GrantRules(gDev1, now); p.Len() != 1 {
		t.Fatalf("forged grants counted: %d rules", p.Len())
	}
	for _, s := range []string{"grant record refused", "record=admins", "record=junk", "record=moved"} {
		waitLog(t, devLogs, s)
	}

	// GET /v1/grants lists them as this node judges them.
	resp, err := http.Get("http://" + dev.APIAddr() + "/v1/grants")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []api.GrantStatus
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, g := range list {
		switch {
		case g.InForce:
			states[g.Rule] = "in force"
		case g.Refused != "":
			states[g.Rule] = "refused"
		}
	}
	if len(list) != 4 || states["techs"] != "in force" || states["admins"] != "refused" || states["junk"] != "refused" || states["moved"] != "refused" {
		t.Fatalf("GET /v1/grants: %+v", list)
	}
}

func scrape(t *testing.T, a *Agent) string {
	t.Helper()
	resp, err := http.Get("http://" + a.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// currentGrantRaw returns this hub's encoded grant of rule.
func (r *running) currentGrantRaw(t *testing.T, rule string) string {
	t.Helper()
	rec, err := r.store.Get(authz.GrantTable, rule)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := rec.Get(authz.GrantField(r.node))
	if !ok {
		t.Fatal("no grant published")
	}
	x, _ := v.Decode()
	return x.(string)
}

// Two hubs publish grants of the same rules: each keeps its own field,
// any valid one counts, the newest issued wins; re-signing moves it.
func TestGrantsTwoHubs(t *testing.T) {
	pki := grantsPKI(t)
	hub, _ := grantHub(t, pki, "hub")
	hub2, _ := grantHub(t, pki, "hub2")
	dev, _ := grantDevice(t, pki, "dev1", "", hub.syncAddr(), hub2.syncAddr())
	dev.mustSync(t)
	b := dev.sec.Grants
	inForce := func(st []api.GrantStatus) (cur []api.GrantStatus) {
		for _, g := range st {
			if g.InForce {
				cur = append(cur, g)
			}
		}
		return cur
	}
	st := b.StatusAt(time.Now())
	n, cur := len(st), inForce(st)
	if n != 2 || len(cur) != 1 {
		t.Fatalf("%d grants, %d current; want 2 and 1", n, len(cur))
	}
	// hub2 re-signs later: its grant is the newest.
	later := time.Now().Add(13 * time.Hour)
	hub2.cur.RLock()
	err := extOf[*authz.Ext](hub2.cur.Get()).Publisher().Publish(later)
	hub2.cur.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	dev.mustSync(t)
	cur = inForce(b.StatusAt(later))
	if len(cur) != 1 || cur[0].Issuer != hub2.node().String() || cur[0].IssuedAt.UnixMilli() != later.UnixMilli() {
		t.Fatalf("current grant %+v, want hub2's newest", cur)
	}
	// Past hub's grant's expiry, hub2's still counts.
	if _, ok := dev.sec.GrantRules(gDev1, time.Now().Add(25*time.Hour)); !ok {
		t.Fatal("hub2's valid grant does not count once hub's expired")
	}
}

// Own mode (default): a device takes from a device peer only the peer's
// own writes within its grant; the hub elides the forbidden one and its
// skeleton reaches the other device; everything legitimate converges.
func TestDevicePeerOwnWrites(t *testing.T) {
	pki := grantsPKI(t)
	hub, _ := grantHub(t, pki, "hub")
	// dev1 has no partner (it would push its writes to the hub at once):
	// the test decides whom it meets.
	dev1, _ := grantDevice(t, pki, "dev1", "")
	hub.write(t, "jobs", "j1", "title", "fix pump")
	dev1.syncWithOnly(t, hub.syncAddr())
	dev2, dev2Logs := grantDevice(t, pki, "dev2", "", hub.syncAddr())
	dev2.mustSync(t) // grants and the job from the hub

	okSeq := dev1.writeSeq(t, "jobs", "j1", "status", "done")
	badSeq := dev1.writeSeq(t, "jobs", "j1", "title", "hacked")
	afterSeq := dev1.writeSeq(t, "jobs", "j2", "notes", "new job notes")
	dev2.syncWithOnly(t, dev1.syncAddr()) // the hub has none of them yet

	if v, _ := dev2.value(t, "jobs", "j1", "status"); v != "done" {
		t.Errorf("dev2 status %q: dev1's granted write must apply", v)
	}
	if v, _ := dev2.value(t, "jobs", "j2", "notes"); v != "new job notes" {
		t.Errorf("dev2 notes %q", v)
	}
	if v, _ := dev2.value(t, "jobs", "j1", "title"); v != "fix pump" {
		t.Errorf("dev2 title %q: a write outside dev1's grant was applied", v)
	}
	if dev2.holds(gDev1, badSeq) || !dev2.holds(gDev1, okSeq) || !dev2.holds(gDev1, afterSeq) {
		t.Errorf("dev2 holdings of dev1: %v (refused %d must not be held)", dev2.cur.Get().store.HeldOf(gDev1), badSeq)
	}
	waitLog(t, dev2Logs, "write from a device peer refused")
	if m := scrape(t, dev2); !strings.Contains(m, "replicad_peer_writes_refused_total 1\n") {
		t.Errorf("metrics: want replicad_peer_writes_refused_total 1:\n%s", m)
	}

	// dev1 meets the hub: the hub elides it and writes back; the skeleton
	// reaches dev2 from the hub. Everyone converges, nothing is lost.
	dev1.syncWithOnly(t, hub.syncAddr())
	dev2.mustSync(t)
	dev1.syncWithOnly(t, hub.syncAddr())
	for name, a := range map[string]*Agent{"hub": hub, "dev1": dev1, "dev2": dev2} {
		if v, _ := a.value(t, "jobs", "j1", "title"); v != "fix pump" {
			t.Errorf("%s title %q", name, v)
		}
		if v, _ := a.value(t, "jobs", "j1", "status"); v != "done" {
			t.Errorf("%s status %q", name, v)
		}
	}
	if !dev2.holds(gDev1, badSeq) {
		t.Error("dev2 never got the hub's skeleton of the refused write")
	}
}

// A relay: dev3 (which never met a hub, so it took all of dev1's writes
// unjudged, as a compromised device might hold them) passes dev1's writes
// on to dev2. In own mode dev2 takes none (dev3 is told so and sends
// none); in granted mode dev2 takes those within dev1's grant only.
func TestDevicePeerRelay(t *testing.T) {
	for _, mode := range []string{PeerRelayOwn, PeerRelayGranted} {
		t.Run(mode, func(t *testing.T) {
			pki := grantsPKI(t)
			hub, _ := grantHub(t, pki, "hub")
			dev1, _ := grantDevice(t, pki, "dev1", "") // no partner: no push to the hub
			okSeq := dev1.writeSeq(t, "jobs", "j1", "status", "done")
			badSeq := dev1.writeSeq(t, "payroll", "p1", "amount", "1e6")
			dev3, _ := grantDevice(t, pki, "dev3", "", dev1.syncAddr())
			dev3.mustSync(t)
			if !dev3.holds(gDev1, badSeq) {
				t.Fatal("setup: dev3 (no grants known) should hold dev1's writes")
			}
			dev2, _ := grantDevice(t, pki, "dev2", mode, hub.syncAddr())
			dev2.mustSync(t) // grants
			dev2.syncWithOnly(t, dev3.syncAddr())
			got, _ := dev2.value(t, "jobs", "j1", "status")
			_, payroll := dev2.value(t, "payroll", "p1", "amount")
			switch mode {
			case PeerRelayOwn:
				if got == "done" || dev2.holds(gDev1, okSeq) {
					t.Error("own mode: dev2 took dev1's write relayed by dev3")
				}
			case PeerRelayGranted:
				if got != "done" || !dev2.holds(gDev1, okSeq) {
					t.Errorf("granted mode: dev1's granted write relayed by dev3 not taken (status %q)", got)
				}
			}
			if payroll || dev2.holds(gDev1, badSeq) {
				t.Error("dev2 took (or holds) dev1's write outside its grant from the relay")
			}
			// Nothing is lost: dev1's legitimate write reaches dev2
			// through the hub.
			dev1.syncWithOnly(t, hub.syncAddr())
			dev2.syncWithOnly(t, hub.syncAddr())
			if v, _ := dev2.value(t, "jobs", "j1", "status"); v != "done" {
				t.Errorf("dev2 status %q after the hub", v)
			}
			if _, ok := dev2.value(t, "payroll", "p1", "amount"); ok {
				t.Error("the forbidden write reached dev2 through the hub")
			}
		})
	}
}

// syncWithOnly runs one session with the node at addr.
func (a *Agent) syncWithOnly(t *testing.T, addr string) {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.cur.Get().engine.SyncWith(ctx, addr); err != nil {
		t.Fatalf("sync with %s: %v", addr, err)
	}
}

// runAgentStoppable is runAgent whose agent the test can stop (stop).
func runAgentStoppable(t *testing.T, cfg Config) (*Agent, *logSink) {
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
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent run: %v", err)
			}
		})
	}
	agentStops.Store(a, stop)
	t.Cleanup(stop)
	return a, sink
}

var agentStops sync.Map // *Agent -> func()

func (a *Agent) stop(t *testing.T) {
	t.Helper()
	f, ok := agentStops.Load(a)
	if !ok {
		t.Fatal("agent not started by runAgentStoppable")
	}
	f.(func())()
}

// Expired grants stop acceptance until a hub re-signs them.
func TestGrantExpiry(t *testing.T) {
	pki := grantsPKI(t)
	hub, _ := grantHub(t, pki, "hub")
	dev1, _ := grantDevice(t, pki, "dev1", "") // no partner: no push to the hub
	dev2, _ := grantDevice(t, pki, "dev2", "", hub.syncAddr())
	dev2.mustSync(t)
	skew := secure.DefaultGrantValidity + time.Hour
	dev2.sec.Grants.SetNow(func() time.Time { return time.Now().Add(skew) }) // a day later
	seq := dev1.writeSeq(t, "jobs", "j1", "status", "done")
	dev2.syncWithOnly(t, dev1.syncAddr())
	if dev2.holds(gDev1, seq) {
		t.Fatal("dev2 took dev1's write under an expired grant")
	}
	// The hub re-signs (its clock a day later too); dev2 gets the new
	// grant from the hub, then takes dev1's write from dev1.
	hub.cur.RLock()
	err := extOf[*authz.Ext](hub.cur.Get()).Publisher().Publish(time.Now().Add(skew))
	hub.cur.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	dev2.syncWithOnly(t, hub.syncAddr())
	dev2.syncWithOnly(t, dev1.syncAddr())
	if !dev2.holds(gDev1, seq) {
		t.Fatal("dev2 refused dev1's write under the re-signed grant")
	}
}

// The hub's write-back over a rejected write is queued in the batch that
// stores the skeleton: a crash before it is carried out loses nothing,
// the hub carries it out when it starts again.
func TestPermissionWriteBackReplay(t *testing.T) {
	pki := grantsPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	syncAddr := l.Addr().String()
	l.Close()
	hcfg := withTLS(testConfig(t, "hub"), pki, "hub")
	hcfg.SyncAddr = syncAddr
	hcfg.Security.Permissions = techRules
	hub, _ := runAgentStoppable(t, hcfg)
	hub.write(t, "jobs", "j1", "title", "fix pump")
	dev, _ := grantDevice(t, pki, "dev1", "", syncAddr)
	dev.mustSync(t)

	hub.cur.RLock()
	extOf[*authz.Ext](hub.cur.Get()).HoldWriteBacks.Store(true) // the "crash": queued, not carried out
	hub.cur.RUnlock()
	dev.writeSeq(t, "jobs", "j1", "title", "hacked")
	dev.mustSync(t)
	if v, _ := hub.value(t, "jobs", "j1", "title"); v == "hacked" {
		t.Fatal("hub applied the rejected value")
	}
	hub.cur.RLock()
	qs, err := hub.cur.Get().store.QueueOf(node.WriteBackQueue, -1)
	ds, derr := hub.cur.Get().store.QueueOf(arbiter.Queue, -1)
	hub.cur.RUnlock()
	if err != nil || derr != nil || len(qs) != 1 || len(ds) != 0 {
		t.Fatalf("queues after the skeleton's batch: %d write-backs, %d decisions, %v %v", len(qs), len(ds), err, derr)
	}
	hub.stop(t)
	if v, _ := dev.value(t, "jobs", "j1", "title"); v != "hacked" {
		t.Fatalf("setup: the device shows %q before the write-back", v)
	}

	hub2, hubLogs := runAgentStoppable(t, hcfg) // same data dir: replays the queue
	waitLog(t, hubLogs, "write rejected by permissions")
	hub2.cur.RLock()
	qs, _ = hub2.cur.Get().store.QueueOf(node.WriteBackQueue, -1)
	hub2.cur.RUnlock()
	if len(qs) != 0 {
		t.Fatalf("%d entries left queued after the replay", len(qs))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dev.syncT(t)
		if v, _ := dev.value(t, "jobs", "j1", "title"); v == "fix pump" {
			break
		}
		if time.Now().After(deadline) {
			v, _ := dev.value(t, "jobs", "j1", "title")
			t.Fatalf("device title %q after the replayed write-back", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs := dev.syncErrors(t, "permission"); len(errs) != 1 {
		t.Fatalf("device sync errors %q", errs)
	}
}

func TestGrantConfigKeys(t *testing.T) {
	path := t.TempDir() + "/c.hcl"
	if err := os.WriteFile(path, []byte("peer_relay = \"granted\"\ngrant_validity = \"2h\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseArgs([]string{"--config", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.PeerRelay != PeerRelayGranted || c.Security.GrantValidity != 2*time.Hour {
		t.Fatalf("from the file: %q %s", c.Security.PeerRelay, c.Security.GrantValidity)
	}
	c, err = ParseArgs([]string{"--config", path, "--peer-relay", "own", "--grant-validity", "1h"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.PeerRelay != PeerRelayOwn || c.Security.GrantValidity != time.Hour {
		t.Fatalf("flags over the file: %q %s", c.Security.PeerRelay, c.Security.GrantValidity)
	}
	for _, args := range [][]string{{"--peer-relay", "all"}, {"--grant-validity", "100ms"}, {"--grant-validity", "900h"}} {
		if _, err := ParseArgs(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// A hub re-signs its grants before half their validity has passed, and
// when a rule changes; not otherwise.
func TestGrantResign(t *testing.T) {
	pki := grantsPKI(t)
	hub, logs := grantHub(t, pki, "hub")
	waitLog(t, logs, "grant published") // at start, by Run
	hub.cur.RLock()
	defer hub.cur.RUnlock()
	r := hub.cur.Get()
	v := secure.DefaultGrantValidity
	issued := func() int64 { return extOf[*authz.Ext](r).Publisher().Current("techs").IssuedMs }
	first := issued()
	t0 := time.UnixMilli(first)
	for _, c := range []struct {
		at     time.Duration
		resign bool
	}{{time.Hour, false}, {v/2 - v/8 - time.Minute, false}, {v/2 - v/8, true}} {
		before := issued()
		if err := extOf[*authz.Ext](r).Publisher().Publish(t0.Add(c.at)); err != nil {
			t.Fatal(err)
		}
		if got := issued() != before; got != c.resign {
			t.Fatalf("at +%s: re-signed %v, want %v", c.at, got, c.resign)
		}
	}
	// A changed rule is re-signed at once.
	before := issued()
	r.a.cfg.Security.Permissions = []Permission{{Name: "techs", Nodes: techRules[0].Nodes, Write: []string{"jobs"}}}
	defer func() { r.a.cfg.Security.Permissions = techRules }()
	if err := extOf[*authz.Ext](r).Publisher().Publish(time.UnixMilli(before).Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	g := extOf[*authz.Ext](r).Publisher().Current("techs")
	if g.IssuedMs == before || strings.Join(g.Write, ",") != "jobs" {
		t.Fatalf("changed rule not re-signed: %+v", g)
	}
}

func hasKey(m map[string][]string, k string) bool { _, ok := m[k]; return ok }
