package agent

import (
	"strings"
	"testing"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/secure"
)

func (a *Agent) node() hlc.NodeID {
	a.cur.RLock()
	defer a.cur.RUnlock()
	return a.cur.Get().node
}

func (a *Agent) value(t *testing.T, table, id, field string) (string, bool) {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	rec, err := a.cur.Get().store.Get(table, id)
	if err != nil || rec == nil {
		return "", false
	}
	v, ok := rec.Get(field)
	if !ok {
		return "", false
	}
	x, err := v.Decode()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := x.(string)
	return s, true
}

func (a *Agent) syncErrors(t *testing.T, policy string) []string {
	t.Helper()
	a.cur.RLock()
	defer a.cur.RUnlock()
	es, err := a.cur.Get().store.ListSyncErrors(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Policy == policy {
			out = append(out, e.Table+"/"+e.Record+": "+e.Detail)
		}
	}
	return out
}

// A hub enforces write permissions on every write it receives: a write
// outside the device's permissions is applied nowhere (the hub keeps its
// skeleton, so the device's later writes still apply), the hub writes back
// over it so the device converges, and the rejection reaches the device's
// sync-error log with the reason.
func TestHubEnforcesWritePermissions(t *testing.T) {
	// The device's node id is fixed by its certificate (an exact binding),
	// so the hub's rule can name it.
	const devID = hlc.NodeID(0x0d0000000000beef)
	pki := tlsCluster(t, map[string]string{"hub": "hub", "d2": "device"})
	if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: pki, Name: "d1", NodeID: uint64(devID)}); err != nil {
		t.Fatal(err)
	}
	hcfg := withTLS(testConfig(t, "hub"), pki, "hub")
	hcfg.Security.Permissions = []Permission{{Name: "technicians", Nodes: []string{devID.String()}, Write: []string{"jobs:status", "timesheets"}}}
	hub, hubLogs := runAgent(t, hcfg)
	dcfg := withTLS(testConfig(t, "device"), pki, "d1")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, _ := runAgent(t, dcfg)
	if dev.node() != devID {
		t.Fatalf("device node %s, want %s", dev.node(), devID)
	}
	d2cfg := withTLS(testConfig(t, "device"), pki, "d2")
	d2cfg.Hubs = []string{hub.syncAddr()}
	other, _ := runAgent(t, d2cfg)

	// The hub has the job; the office sets its title.
	hub.write(t, "jobs", "j1", "title", "fix pump")
	devSync := func() {
		t.Helper()
		if f := dev.syncT(t); len(f) > 0 {
			t.Fatalf("device sync: %v", f)
		}
	}
	devSync()
	if v, _ := dev.value(t, "jobs", "j1", "title"); v != "fix pump" {
		t.Fatalf("device title %q", v)
	}
	dev.write(t, "jobs", "j1", "status", "done")     // allowed
	dev.write(t, "jobs", "j1", "title", "hacked")    // field not allowed
	dev.write(t, "payroll", "p1", "amount", "1e6")   // table not allowed
	dev.write(t, "timesheets", "t1", "hours", "8")   // allowed table
	dev.write(t, "jobs", "j1", "status", "verified") // allowed, after the rejected ones
	devSync()

	if v, _ := hub.value(t, "jobs", "j1", "status"); v != "verified" {
		t.Errorf("hub status %q: the device's allowed writes after a rejected one must apply", v)
	}
	if v, _ := hub.value(t, "timesheets", "t1", "hours"); v != "8" {
		t.Errorf("hub timesheet %q", v)
	}
	if v, _ := hub.value(t, "jobs", "j1", "title"); v != "fix pump" {
		t.Errorf("hub title %q: a write outside the permissions was applied", v)
	}
	if _, ok := hub.value(t, "payroll", "p1", "amount"); ok {
		t.Error("hub holds a record of a table the device may not write")
	}
	errs := hub.syncErrors(t, "permission")
	if len(errs) != 2 || !strings.Contains(strings.Join(errs, "\n"), "may not write field(s) title of table jobs") ||
		!strings.Contains(strings.Join(errs, "\n"), "may not write table payroll") {
		t.Errorf("hub sync errors: %q", errs)
	}
	waitLog(t, hubLogs, "write rejected by permissions")

	// The device converges on the hub's values and lists the rejections.
	devSync()
	if v, _ := dev.value(t, "jobs", "j1", "title"); v != "fix pump" {
		t.Errorf("device title %q after the hub's compensation", v)
	}
	if _, ok := dev.value(t, "payroll", "p1", "amount"); ok {
		t.Error("device still shows its rejected record")
	}
	if errs := dev.syncErrors(t, "permission"); len(errs) != 2 {
		t.Errorf("device sync errors: %q", errs)
	}
	// Another device never sees the rejected values.
	if f := other.syncT(t); len(f) > 0 {
		t.Fatal(f)
	}
	if v, _ := other.value(t, "jobs", "j1", "title"); v != "fix pump" {
		t.Errorf("other device title %q", v)
	}
	if _, ok := other.value(t, "payroll", "p1", "amount"); ok {
		t.Error("other device got a rejected record")
	}
	if v, _ := other.value(t, "jobs", "j1", "status"); v != "verified" {
		t.Errorf("other device status %q", v)
	}
	// Same state everywhere for the record the device touched.
	for _, a := range []*Agent{hub, dev, other} {
		if v, _ := a.value(t, "jobs", "j1", "title"); v != "fix pump" {
			t.Errorf("%s: title %q", a.node(), v)
		}
	}
}
