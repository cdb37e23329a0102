package replication

import (
	"reflect"
	"testing"

	"github.com/replicad/replicad/crdt"
)

// TestRecreateAfterCollectionAcrossDevices: a device that collected a
// deleted record (it learned the horizon from the hub) writes it again,
// and syncs with devices that have not collected it yet (only hubs bring
// the horizon): a full replica and a filtered one that keep the
// tombstone. Every replica ends showing the new write alone (before, the
// write carried an empty context, and the others kept it and the delete
// as concurrent candidates: an existence conflict a manual table shows as
// "_exists"), including once everyone has synced with the hub.
func TestRecreateAfterCollectionAcrossDevices(t *testing.T) {
	// fCollects: the filtered device collects r with a (it syncs with the
	// hub just before a), so a's write reaches a record it no longer has.
	for _, fCollects := range []bool{false, true} {
		name := "the filtered device kept the tombstone"
		if fCollects {
			name = "the filtered device collected the record"
		}
		t.Run(name, func(t *testing.T) { recreateAfterCollection(t, fCollects) })
	}
}

func recreateAfterCollection(t *testing.T, fCollects bool) {
	s, hub, c := gcSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "device", FullScope())
	open := crdt.MustValue("open")
	f := s.add("f", "device", Scope{Tables: []TableScope{{Table: "jobs", Where: []FieldMatch{{Field: "status", Value: open}}}}})
	s.write(a, "jobs", "r", map[string]any{"status": "open", "site": "north"}, false)
	gcRound(t, s, hub, c, a, b, f, a, b, f)
	a.phys += 10
	s.write(a, "jobs", "r", nil, true)
	gcRound(t, s, hub, c, a, b, f)
	// Rounds until a has collected r while b has not.
	step := func(d *simNode) {
		s.mustSync(d, hub)
		if _, err := c.Step(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatalf("a never collected r (collector: %s)", c.Status())
		}
		hub.phys += 1000
		if fCollects {
			step(f)
		}
		s.mustSync(a, hub)
		if collected(t, a, "jobs", "r") {
			break
		}
		if _, err := c.Step(); err != nil {
			t.Fatal(err)
		}
		step(b)
		if !fCollects {
			step(f)
		}
	}
	if collected(t, b, "jobs", "r") || collected(t, f, "jobs", "r") != fCollects {
		t.Fatalf("collected on b %v, on f %v: the order this test needs did not arise", collected(t, b, "jobs", "r"), collected(t, f, "jobs", "r"))
	}

	a.phys += 10
	again := s.write(a, "jobs", "r", map[string]any{"status": "open", "site": "south"}, false)
	t.Logf("a's write after collection: %v, context %v", again.Dot(), again.Ctx)
	s.mustSync(a, b)
	s.mustSync(a, f)
	check := func(when string, nodes ...*simNode) {
		t.Helper()
		want, err := a.st.Get("jobs", "r")
		if err != nil {
			t.Fatalf("%s: a: %v", when, err)
		}
		for _, n := range nodes {
			got, err := n.st.Get("jobs", "r")
			if err != nil {
				t.Errorf("%s: %s: %v", when, n.name, err)
				continue
			}
			if got.HasConflict() || len(got.Exist) != 1 || !reflect.DeepEqual(got.Values(), want.Values()) {
				t.Errorf("%s: %s shows %v (existence %+v); a shows %v", when, n.name, got.Values(), got.Exist, want.Values())
			}
		}
	}
	check("after the device sessions", b, f)
	for i := 0; i < 3; i++ {
		hub.phys += 1000
		gcRound(t, s, hub, c, a, b, f)
	}
	check("after syncing with the hub", hub, b, f)
}
