package replication

import (
	"testing"
)

// TestStateTransferClaimsParkedWrites: a device whose clock ran behind
// parked writes the hub sent by the log (stamped beyond its clock
// bound); once its clock is right again, the hub catches it up by record
// states, whose covered numbers include the parked writes. The states
// carry those writes, so the parked copies must go with the claim: left
// parked they would never apply (their numbers are held, no peer sends
// them again), count against the origin's bound, and a release would
// write their old values over newer ones.
func TestStateTransferClaimsParkedWrites(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	dev := s.add("dev", "device", FullScope())
	s.write(a, "t", "x", map[string]any{"f": "base"}, false)
	s.mustSync(a, hub)
	s.mustSync(dev, hub)

	dev.phys -= 3600_000 // the device's clock falls an hour behind
	for i := 0; i < 5; i++ {
		a.phys += 10
		hub.phys += 10
		s.write(a, "t", "x", map[string]any{"f": i}, false)
		s.write(a, "t", "y", map[string]any{"f": i}, false)
	}
	s.mustSync(a, hub)
	s.mustSync(dev, hub) // by the log: parked at the device
	if n, _ := dev.st.ParkedCount(); n != 10 {
		t.Fatalf("the device parked %d writes, want 10", n)
	}

	dev.phys += 3600_000 + 100 // its clock is right again
	hub.local.StateMinWrites = -1
	sd, _, err := s.session(dev, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sd.StateRecords == 0 || sd.StateClaimed != 10 {
		t.Fatalf("the hub did not catch the device up by states: %+v", sd)
	}
	if n, by := dev.st.ParkedCount(); n != 0 {
		t.Fatalf("%d writes still parked at the device (%v) though it holds their numbers through states", n, by)
	}
	if ps, err := dev.st.ListParked(); err != nil || len(ps) != 0 {
		t.Fatalf("parked writes listed: %d %v", len(ps), err)
	}
	if digest(t, dev) != digest(t, hub) {
		t.Fatal("device differs from the hub")
	}
	if d := holdingsEqual(dev, hub); d != "" {
		t.Fatal(d)
	}
	if err := dev.st.Verify(); err != nil {
		t.Fatal(err)
	}
}
