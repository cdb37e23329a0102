package replication

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/replicad/replicad/store"
)

// techScope is a technician's offline profile: bookings of the device's
// user from today on, the work orders they reference, the customers of
// those work orders.
func techScope(user string) Scope {
	return Scope{
		Profile: "technician",
		Device:  []Attr{{Name: "user", Value: user}},
		Tables: []TableScope{
			{Table: "bookings", Filter: "owner == device.user && start >= today", Priority: 10},
			{Table: "customers", Related: []Relation{{Table: "workorders", Field: "customer"}}},
			{Table: "workorders", Related: []Relation{{Table: "bookings", Field: "wo"}}, Priority: 5},
		},
	}
}

func day(n *simNode, d int) string {
	return time.UnixMilli(n.phys).UTC().AddDate(0, 0, d).Format(time.DateOnly)
}

// holds returns the ids of table that n shows.
func holds(t *testing.T, n *simNode, table string) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		page, next, err := n.st.Scan(table, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Record.Exists() {
				ids = append(ids, e.ID)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	sort.Strings(ids)
	return ids
}

// selectedAt is what the hub's own evaluation of sc selects of table.
func selectedAt(t *testing.T, hub *simNode, sc Scope, table string) []string {
	t.Helper()
	ev := relatedEval(sc, hub.st, hub.phys)
	var ids []string
	page, _, err := hub.st.Scan(table, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page {
		if e.Record.Exists() && sc.Selects(table, e.ID, e.Record, ev) {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func checkHolds(t *testing.T, s *sim, hub, dev *simNode, sc Scope) {
	t.Helper()
	for _, table := range []string{"bookings", "workorders", "customers"} {
		got, want := fmt.Sprint(holds(t, dev, table)), fmt.Sprint(selectedAt(t, hub, sc, table))
		if got != want {
			s.fail("%s holds %s %s, its profile selects %s", dev.name, table, got, want)
		}
	}
}

// TestProfileScopes: a hub assigns two technicians their profiles (an
// expression over fields, time and the device's user; related tables two
// levels deep). Each holds exactly what its profile selects, by the hub's
// own evaluation, after every change: time passing (a booking of
// yesterday leaves), a booking moved to today (it and its work order and
// customer arrive), a booking reassigned, a profile change (a delta), and
// the two devices syncing with each other directly (nothing leaks, nothing
// is lost). Records that leave are removed without a delete: the hub
// keeps them, reading them locally is ErrOutOfScope.
func TestProfileScopes(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	alice := s.add("alice", "device", Scope{})
	bob := s.add("bob", "device", Scope{})
	assigned := map[string]Scope{"alice": techScope("alice"), "bob": techScope("bob")}
	byNode := map[uint64]string{uint64(alice.local.Node): "alice", uint64(bob.local.Node): "bob"}
	hub.local.Assign = func(p Peer) (Scope, bool) {
		sc, ok := assigned[byNode[uint64(p.Node)]]
		return sc, ok
	}
	var adopted []string
	alice.local.OnAssigned = func(sc Scope) { adopted = append(adopted, sc.String()) }

	for i, c := range []struct{ cust, wo, owner string }{{"c1", "w1", "alice"}, {"c2", "w2", "alice"}, {"c3", "w3", "bob"}, {"c4", "w4", "bob"}} {
		s.write(hub, "customers", c.cust, map[string]any{"name": "customer " + c.cust}, false)
		s.write(hub, "workorders", c.wo, map[string]any{"customer": c.cust, "title": "job " + c.wo}, false)
		s.write(hub, "bookings", fmt.Sprintf("b%d", i+1), map[string]any{"wo": c.wo, "owner": c.owner, "start": day(hub, i%2)}, false)
	}
	// Yesterday's booking of alice's, on a work order nobody else books,
	// for a customer nobody else has: none of them ever reaches alice
	// until her profile widens.
	s.write(hub, "customers", "c5", map[string]any{"name": "old"}, false)
	s.write(hub, "workorders", "w5", map[string]any{"customer": "c5"}, false)
	s.write(hub, "bookings", "b5", map[string]any{"wo": "w5", "owner": "alice", "start": day(hub, -1)}, false)

	// The daemon's own tables (policies, sync errors) reach every scope.
	s.write(hub, "_replicad_policy", "bookings", map[string]any{"policy": "server-wins"}, false)
	for _, d := range []*simNode{alice, bob} {
		s.mustSync(d, hub)
		checkHolds(t, s, hub, d, assigned[d.name])
		if _, err := d.st.Get("_replicad_policy", "bookings"); err != nil {
			t.Fatalf("%s lacks the system table's record: %v", d.name, err)
		}
	}
	if len(adopted) != 1 || fmt.Sprint(holds(t, alice, "bookings")) != "[b1 b2]" {
		t.Fatalf("alice adopted %v and holds bookings %v", adopted, holds(t, alice, "bookings"))
	}

	// A day passes: b1 (today) is yesterday now; it, its work order and
	// its customer leave alice's device. The hub keeps them.
	for _, n := range s.nodes {
		n.phys += 24 * 3600 * 1000
	}
	s.mustSync(alice, hub)
	checkHolds(t, s, hub, alice, assigned["alice"])
	if _, err := alice.st.Get("bookings", "b1"); !errors.Is(err, store.ErrOutOfScope) {
		t.Fatalf("b1 on alice after it left the profile: %v, want ErrOutOfScope", err)
	}
	if rec, err := hub.st.Get("bookings", "b1"); err != nil || !rec.Exists() {
		t.Fatalf("b1 on the hub: %v (a record leaving a profile is not deleted)", err)
	}

	// The office moves b5 to today and gives b4 to alice.
	s.write(hub, "bookings", "b5", map[string]any{"start": day(hub, 0)}, false)
	s.write(hub, "bookings", "b4", map[string]any{"owner": "alice"}, false)
	for _, d := range []*simNode{alice, bob, alice} {
		s.mustSync(d, hub)
		checkHolds(t, s, hub, d, assigned[d.name])
	}

	// Alice edits her booking offline, then meets bob directly: bob's
	// profile does not select it: he never holds it.
	s.write(alice, "bookings", "b5", map[string]any{"note": "gate code 1234"}, false)
	s.mustSync(alice, bob)
	s.mustSync(bob, alice)
	if ids := holds(t, bob, "bookings"); fmt.Sprint(ids) != fmt.Sprint(selectedAt(t, hub, assigned["bob"], "bookings")) {
		t.Fatalf("bob holds bookings %v after meeting alice", ids)
	}
	s.mustSync(alice, hub)
	if rec, err := hub.st.Get("bookings", "b5"); err != nil {
		t.Fatal(err)
	} else if v, _ := rec.Get("note"); v.String() != `"gate code 1234"` {
		t.Fatalf("alice's note on the hub = %v", v)
	}

	// The office widens alice's profile to every booking of hers, past
	// ones too: a delta brings b1 (and its work order, customer) back.
	wide := techScope("alice")
	wide.Tables[0].Filter = "owner == device.user"
	assigned["alice"] = wide
	s.mustSync(alice, hub)
	checkHolds(t, s, hub, alice, wide)
	if fmt.Sprint(holds(t, alice, "bookings")) != "[b1 b2 b4 b5]" || len(adopted) != 2 || fmt.Sprint(holds(t, alice, "customers")) != "[c1 c2 c4 c5]" {
		t.Fatalf("after widening: alice holds %v, adopted %d scopes", holds(t, alice, "bookings"), len(adopted))
	}
	for _, d := range []*simNode{alice, bob} {
		s.mustSync(d, hub)
		checkHolds(t, s, hub, d, assigned[d.name])
	}
}
