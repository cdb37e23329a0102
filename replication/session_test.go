package replication

import (
	"errors"
	"fmt"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

func TestDeviceHubDevice(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	b := s.add("b", "device", FullScope())
	s.write(a, "wo", "1", map[string]any{"start": "08:00", "end": "10:00"}, false)
	s.mustSync(a, hub)
	s.mustSync(b, hub)
	rec, err := b.st.Get("wo", "1")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("start"); v.String() != `"08:00"` {
		t.Fatalf("b sees start=%s", v)
	}
	// Concurrent edits of different fields, offline, then sync both ways.
	a.phys += 1000
	b.phys += 2000
	s.write(a, "wo", "1", map[string]any{"start": "09:00"}, false)
	s.write(b, "wo", "1", map[string]any{"end": "12:00"}, false)
	s.mustSync(a, hub)
	s.mustSync(b, hub)
	s.mustSync(a, hub)
	for _, n := range []*simNode{a, b, hub} {
		rec, _ := n.st.Get("wo", "1")
		got := fmt.Sprint(rec.Values())
		if v, _ := rec.Get("start"); v.String() != `"09:00"` {
			t.Fatalf("%s: start %s (%s)", n.name, v, got)
		}
		if v, _ := rec.Get("end"); v.String() != `"12:00"` {
			t.Fatalf("%s: end %s", n.name, v)
		}
	}
	if digest(t, a) != digest(t, hub) || digest(t, b) != digest(t, hub) {
		t.Fatal("replicas differ")
	}
	// A second session sends nothing.
	sa, sh, err := s.session(a, hub, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sa.WritesSent != 0 || sh.WritesSent != 0 {
		t.Fatalf("idle session sent %d and %d writes", sa.WritesSent, sh.WritesSent)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	s := newSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "hub", FullScope())
	b.local.Cluster = "other"
	if _, _, err := s.session(a, b, 0); err == nil {
		t.Fatal("sessions across clusters must be refused")
	} else if _, ok := err.(*RefusedError); !ok {
		t.Fatalf("got %v, want a refusal", err)
	}
	b.local.Cluster = "sim"
	b.local.Node = a.local.Node
	if _, _, err := s.session(a, b, 0); err == nil {
		t.Fatal("a peer with the same node id must be refused")
	}
}

// TestCutAtEveryMessage cuts a catch-up session after each message in
// turn; every cut session resumes and the replicas end identical, and no
// write is applied twice.
func TestCutAtEveryMessage(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	a.local.ChunkBytes = 2048 // many small chunks
	hub.local.ChunkBytes = 2048
	for i := 0; i < 400; i++ {
		a.phys++
		if i%37 == 36 {
			s.write(a, "t", fmt.Sprint(i%50), nil, true)
		} else {
			s.write(a, "t", fmt.Sprint(i%50), map[string]any{fmt.Sprintf("f%d", i%7): i}, false)
		}
	}
	total := uint64(len(a.acked))
	var applied uint64
	cutsDone := 0
	for cut := 1; ; cut++ {
		_, sh, err := s.session(a, hub, cut)
		applied += sh.WritesApplied
		if err == nil {
			break
		}
		cutsDone++
		if err != errCut {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if cut > 1000 {
			t.Fatal("never finished")
		}
	}
	t.Logf("%d writes synced over %d cut sessions", total, cutsDone)
	if applied != total {
		t.Fatalf("hub applied %d writes over the cut sessions, want exactly %d", applied, total)
	}
	if digest(t, a) != digest(t, hub) {
		t.Fatal("replicas differ after resumed sessions")
	}
	if err := hub.st.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestPartialReplica: a device holding one table gets only that table, and
// its gaps close (the other table's writes are declared empty to it). A
// wider device that syncs only with the narrow one must not believe it
// holds what the narrow one left out.
func TestPartialReplica(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	office := s.add("office", "device", FullScope())
	narrow := s.add("narrow", "device", TablesScope("jobs"))
	wide := s.add("wide", "device", TablesScope("customers", "jobs"))
	for i := 0; i < 20; i++ {
		office.phys++
		s.write(office, "jobs", fmt.Sprint(i), map[string]any{"n": i}, false)
		s.write(office, "customers", fmt.Sprint(i), map[string]any{"n": i}, false)
	}
	s.mustSync(office, hub)
	s.mustSync(narrow, hub)
	if _, err := narrow.st.Get("customers", "1"); err == nil {
		t.Fatal("narrow device holds a record outside its scope")
	}
	if _, err := narrow.st.Get("jobs", "19"); err != nil {
		t.Fatalf("narrow device lacks jobs/19: %v", err)
	}
	oh := office.st.Holdings()[office.local.Node]
	nh := narrow.st.Holdings()[office.local.Node]
	if !nh.Equal(oh) {
		t.Fatalf("narrow device holds %v of the office's writes, want %v (gaps must close)", nh, oh)
	}
	// wide syncs only with narrow: it gets the jobs, but not the belief
	// that it holds the customers.
	s.mustSync(wide, narrow)
	if _, err := wide.st.Get("jobs", "3"); err != nil {
		t.Fatalf("wide lacks jobs/3: %v", err)
	}
	wh := wide.st.Holdings()[office.local.Node]
	if wh.Equal(oh) {
		t.Fatal("wide device believes it holds every office write after syncing with a narrow peer")
	}
	s.mustSync(wide, hub)
	if _, err := wide.st.Get("customers", "3"); err != nil {
		t.Fatalf("wide lacks customers/3 after syncing with the hub: %v", err)
	}
	if got := wide.st.Holdings()[office.local.Node]; !got.Equal(oh) {
		t.Fatalf("wide holds %v, want %v", got, oh)
	}
}

// TestChainAcrossDevices: a change made on A reaches C through B, though A
// and C never meet.
func TestChainAcrossDevices(t *testing.T) {
	s := newSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "device", FullScope())
	c := s.add("c", "device", FullScope())
	s.write(a, "t", "x", map[string]any{"v": 1}, false)
	s.mustSync(a, b)
	s.mustSync(b, c)
	rec, err := c.st.Get("t", "x")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("v"); v.String() != "1" {
		t.Fatalf("c sees %s", v)
	}
}

// TestScopeEnterLeave: a device whose scope is the open jobs. A job that
// starts to match arrives whole; one that stops matching is hidden on the
// device only (no delete replicated), and a peer with a stale view does
// not push it back.
func TestScopeEnterLeave(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	office := s.add("office", "device", FullScope())
	peer := s.add("peer", "device", FullScope())
	open := crdt.MustValue("open")
	dev := s.add("dev", "device", Scope{Tables: []TableScope{{Table: "jobs", Where: []FieldMatch{{Field: "status", Value: open}}}}})
	for i := 1; i <= 6; i++ {
		status := "open"
		if i > 3 {
			status = "closed"
		}
		office.phys++
		s.write(office, "jobs", fmt.Sprint(i), map[string]any{"status": status, "site": fmt.Sprintf("site %d", i)}, false)
		s.write(office, "jobs", fmt.Sprint(i), map[string]any{"notes": "first visit"}, false)
	}
	s.mustSync(office, hub)
	s.mustSync(dev, hub)
	for i := 1; i <= 6; i++ {
		_, err := dev.st.Get("jobs", fmt.Sprint(i))
		if (i <= 3) != (err == nil) {
			t.Fatalf("job %d on the device: err=%v", i, err)
		}
	}
	if got, want := dev.st.Holdings()[office.local.Node], office.st.Holdings()[office.local.Node]; !got.Equal(want) {
		t.Fatalf("device holds %v of the office's writes, want %v", got, want)
	}
	s.mustSync(peer, hub) // the peer's view, before the changes below

	// Job 4 starts to match: it arrives whole, notes and all.
	office.phys++
	s.write(office, "jobs", "4", map[string]any{"status": "open"}, false)
	// Job 1 stops matching.
	s.write(office, "jobs", "1", map[string]any{"status": "closed"}, false)
	s.mustSync(office, hub)
	s.mustSync(dev, hub)
	rec4, err := dev.st.Get("jobs", "4")
	if err != nil {
		t.Fatalf("job 4 did not arrive: %v", err)
	}
	hub4, _ := hub.st.Get("jobs", "4")
	if rec4.Digest() != hub4.Digest() {
		t.Fatalf("job 4 arrived partial:\n%v\nhub:\n%v", rec4.Values(), hub4.Values())
	}
	if _, err := dev.st.Get("jobs", "1"); !errors.Is(err, store.ErrOutOfScope) {
		t.Fatalf("job 1 after leaving the scope: %v, want ErrOutOfScope", err)
	}
	if rec, err := hub.st.Get("jobs", "1"); err != nil || !rec.Exists() {
		t.Fatalf("leaving a device's scope deleted job 1 at the hub: %v", err)
	}
	// A peer that still sees job 1 open does not push it back.
	s.mustSync(peer, dev)
	if _, err := dev.st.Get("jobs", "1"); !errors.Is(err, store.ErrOutOfScope) {
		t.Fatalf("job 1 pushed back by a stale peer: %v", err)
	}
	if rec, err := peer.st.Get("jobs", "1"); err != nil || !rec.Exists() {
		t.Fatalf("the peer lost job 1: %v", err)
	}
	// Job 1 comes back into scope: it is shown again, whole.
	office.phys++
	s.write(office, "jobs", "1", map[string]any{"status": "open", "notes": "second visit"}, false)
	s.mustSync(office, hub)
	s.mustSync(dev, hub)
	rec1, err := dev.st.Get("jobs", "1")
	if err != nil {
		t.Fatalf("job 1 back in scope: %v", err)
	}
	hub1, _ := hub.st.Get("jobs", "1")
	if rec1.Digest() != hub1.Digest() {
		t.Fatal("job 1 back in scope differs from the hub's")
	}
	for _, n := range []*simNode{hub, office, peer, dev} {
		if err := n.st.Verify(); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
	}
}

// TestHubCluster: two hubs are full replicas of each other; devices sync
// with either and see the same data; a device may switch hubs.
func TestHubCluster(t *testing.T) {
	s := newSim(t)
	h1 := s.add("h1", "hub", FullScope())
	h2 := s.add("h2", "hub", FullScope())
	a := s.add("a", "device", FullScope())
	b := s.add("b", "device", FullScope())
	s.write(a, "wo", "1", map[string]any{"start": "08:00"}, false)
	s.write(b, "wo", "2", map[string]any{"start": "09:00"}, false)
	s.mustSync(a, h1)
	s.mustSync(b, h2)
	s.mustSync(h1, h2)
	s.mustSync(a, h1)
	s.mustSync(b, h2)
	if !converged(t, []*simNode{h1, h2, a, b}) {
		t.Fatal("hub cluster and devices differ")
	}
	// a switches to h2 and writes; b reads it through h1.
	a.phys += 10
	s.write(a, "wo", "2", map[string]any{"end": "10:00"}, false)
	s.mustSync(a, h2)
	s.mustSync(h2, h1)
	s.mustSync(b, h1)
	rec, err := b.st.Get("wo", "2")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("end"); v.String() != `"10:00"` {
		t.Fatalf("b sees end=%s", v)
	}
	// A second session between the hubs sends nothing: nothing is sent twice.
	s1, s2, err := s.session(h1, h2, 0)
	if err != nil || s1.WritesSent+s2.WritesSent != 0 {
		t.Fatalf("idle hub session: %v, %d+%d writes", err, s1.WritesSent, s2.WritesSent)
	}
}
