package replication

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// relayFilter is what a node in a TLS cluster sets for device peers:
// origins taken (the peer's own, plus extra for relays) and a check that
// refuses the table "payroll".
func relayFilter(extra ...hlc.NodeID) func(p Peer) *WriteFilter {
	return func(p Peer) *WriteFilter {
		if p.Role != "device" {
			return nil
		}
		f := &WriteFilter{Origins: []OriginMatch{{Node: p.Node, Bits: 64}}, Check: func(w *crdt.Write) string {
			if w.Table == "payroll" {
				return "payroll is not granted"
			}
			return ""
		}}
		for _, n := range extra {
			f.Origins = append(f.Origins, OriginMatch{Node: n, Bits: 64})
		}
		return f
	}
}

func syncOK(t *testing.T, n *engNode) Stats {
	t.Helper()
	sum := n.eng.SyncNow(context.Background(), nil)
	if len(sum.Failed) > 0 {
		t.Fatalf("%s: sync failed: %v", n.name, sum.Failed)
	}
	return sum.Stats
}

// A session with a filter takes only the accepted origins' writes, each
// as its check allows; refused writes are neither applied nor held, the
// peer is told which origins are accepted and sends no others, and what
// was refused is not lost: it arrives once a session may take it.
func TestWriteFilterOrigins(t *testing.T) {
	net := NewMemNet()
	a := startEngine(t, net, "a", "device", nil, nil)
	b := startEngine(t, net, "b", "device", []string{a.addr}, nil)
	var extra []hlc.NodeID
	c := startEngine(t, net, "c", "device", []string{b.addr}, func(cfg *Config) {
		cfg.Local.Filter = func(p Peer) *WriteFilter { return relayFilter(extra...)(p) }
	})

	wa := a.put(t, "jobs", "j1", "status", "done")
	syncOK(t, b) // b (no filter) takes a's write
	if b.value("jobs", "j1", "status") != `"done"` {
		t.Fatal("b did not get a's write")
	}
	b.put(t, "jobs", "j2", "status", "open")
	wp := b.put(t, "payroll", "p1", "amount", 100)
	b.put(t, "jobs", "j2", "notes", "after the refused one")

	st := syncOK(t, c)
	if got := c.value("jobs", "j2", "notes"); got != `"after the refused one"` {
		t.Fatalf("c: b's own allowed writes: notes %s", got)
	}
	if got := c.value("payroll", "p1", "amount"); got == "100" {
		t.Fatal("c applied b's refused write")
	}
	if c.st.HeldOf(b.st.NodeID()).Contains(wp.Seq) {
		t.Fatal("c's holdings claim the refused write")
	}
	if c.value("jobs", "j1", "status") == `"done"` {
		t.Fatal("c took a's write relayed by b")
	}
	if c.st.HeldOf(a.st.NodeID()).Contains(wa.Seq) {
		t.Fatal("c's holdings claim a's write")
	}
	if st.Refused != 1 {
		t.Fatalf("refused %d writes, want 1 (b's payroll write; a's were not sent)", st.Refused)
	}

	// Next session: a's writes are still not sent (c accepts only b's
	// origin), b's refused write is offered again and refused again.
	st = syncOK(t, c)
	if st.Refused != 1 || st.WritesApplied != 0 {
		t.Fatalf("second session: refused %d applied %d, want 1 and 0", st.Refused, st.WritesApplied)
	}

	// Relays allowed for a's origin: a's write arrives through b.
	extra = []hlc.NodeID{a.st.NodeID()}
	syncOK(t, c)
	if got := c.value("jobs", "j1", "status"); got != `"done"` {
		t.Fatalf("c, relay of a allowed: status %s", got)
	}
	if c.st.HeldOf(b.st.NodeID()).Contains(wp.Seq) {
		t.Fatal("c's holdings claim the refused write")
	}

	// Nothing is lost: without the filter (a hub's session) the refused
	// write arrives.
	d := startEngine(t, net, "d", "device", []string{b.addr}, nil)
	syncOK(t, d)
	if got := d.value("payroll", "p1", "amount"); got != "100" {
		t.Fatalf("d: %s", got)
	}
}

// A filtered session fetches no whole record from the peer: a write whose
// predecessor was refused is dropped (not held), not completed by the
// peer's state of the record, which holds the refused value.
func TestWriteFilterNoRecordFetch(t *testing.T) {
	net := NewMemNet()
	b := startEngine(t, net, "b", "device", nil, nil)
	c := startEngine(t, net, "c", "device", []string{b.addr}, func(cfg *Config) {
		cfg.Local.Filter = func(p Peer) *WriteFilter {
			return &WriteFilter{Origins: []OriginMatch{{Node: p.Node, Bits: 64}}, Check: func(w *crdt.Write) string {
				if len(w.Fields) == 1 && w.Fields[0].Name == "secret" {
					return "secret is not granted"
				}
				return ""
			}}
		}
	})
	w1 := b.put(t, "jobs", "j1", "secret", "forged")
	w2 := b.put(t, "jobs", "j1", "status", "open") // its context names w1
	st := syncOK(t, c)
	if c.st.HeldOf(b.st.NodeID()).Contains(w1.Seq) || c.st.HeldOf(b.st.NodeID()).Contains(w2.Seq) {
		t.Fatalf("c holds %v", c.st.HeldOf(b.st.NodeID()))
	}
	if got := c.value("jobs", "j1", "secret"); got == `"forged"` {
		t.Fatal("c took the refused value through a whole record")
	}
	if st.RecordsFetched != 0 {
		t.Fatalf("fetched %d records from a filtered peer", st.RecordsFetched)
	}
}

// Under PushHints a gossip push applies nothing: a write this node lacks
// makes it sync with the pusher, over a session (which a filter judges).
func TestPushHints(t *testing.T) {
	net := NewMemNet()
	a := startEngine(t, net, "a", "device", nil, nil)
	c := startEngine(t, net, "c", "device", []string{a.addr}, func(cfg *Config) {
		cfg.PushHints = true
		cfg.Local.Filter = relayFilter()
	})
	syncOK(t, c) // c learns a's node id
	w := a.put(t, "jobs", "j1", "status", "done")
	forged := &crdt.Write{Origin: a.st.NodeID(), Seq: w.Seq + 1, TS: w.TS + 1, Table: "payroll", ID: "p1",
		Fields: []crdt.FieldValue{{Name: "amount", Value: crdt.MustValue(1)}}, Ctx: crdt.VV{w.Dot()}}
	b, err := crdt.AppendWrite(nil, forged)
	if err != nil {
		t.Fatal(err)
	}
	c.eng.HandlePushFrom(a.st.NodeID(), b)
	if got := c.value("payroll", "p1", "amount"); got == "1" {
		t.Fatal("a push was applied")
	}
	pw, _ := crdt.AppendWrite(nil, w)
	c.eng.HandlePushFrom(a.st.NodeID(), pw)
	waitFor(t, "the hinted sync", func() bool { return c.value("jobs", "j1", "status") == `"done"` })
	if c.value("payroll", "p1", "amount") == "1" || c.st.HeldOf(a.st.NodeID()).Contains(w.Seq+1) {
		t.Fatal("the forged push was applied")
	}
}

// Have.Accept round-trips, an empty list staying empty (nothing
// accepted), not nil (everything); malformed lists are refused.
func TestAcceptOriginsWire(t *testing.T) {
	for _, a := range []*AcceptOrigins{nil, {Nodes: []uint64{}}, {Nodes: []uint64{7, 64, 0x0d00000000000000, 8}}} {
		b, err := EncodeMsg(Msg{Have: &Have{Accept: a}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMsg(b)
		if err != nil {
			t.Fatal(err)
		}
		got := m.Have.Accept
		if (got == nil) != (a == nil) || a != nil && len(got.Nodes) != len(a.Nodes) {
			t.Fatalf("sent %+v, got %+v", a, got)
		}
	}
	for _, nodes := range [][]uint64{{7}, {0, 64}, {7, 0}, {7, 65}} {
		b, _ := EncodeMsg(Msg{Have: &Have{Accept: &AcceptOrigins{Nodes: nodes}}})
		if _, err := DecodeMsg(b); err == nil {
			t.Errorf("accepted origins %v decoded", nodes)
		}
	}
}

// FuzzFilteredSession: a session whose filter takes only the peer's own
// origin (node 2) and refuses table "payroll" never holds another
// origin's writes nor a payroll record, whatever the peer sends.
func FuzzFilteredSession(f *testing.F) {
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	local := &Local{Node: 1, Cluster: "c", Role: "device", Scope: FullScope(), Clock: clock, Store: st,
		Filter: func(p Peer) *WriteFilter {
			return &WriteFilter{Origins: []OriginMatch{{Node: p.Node, Bits: 64}}, Check: func(w *crdt.Write) string {
				if w.Table == "payroll" {
					return "not granted"
				}
				return ""
			}}
		}}
	frames := func(ms ...Msg) []byte {
		var b bytes.Buffer
		for _, m := range ms {
			WriteMsg(&b, m)
		}
		return b.Bytes()
	}
	mk := func(origin hlc.NodeID, table string) []byte {
		b, _ := encodeChunkWrites([]*crdt.Write{{Origin: origin, Seq: 1, TS: 1 << 16, Table: table, ID: "x",
			Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("s")}}}}, 2, 1)
		return b
	}
	hello := Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: "device", Scope: FullScope()}}
	welcome := Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: "device", Scope: FullScope()}}
	for _, dialer := range []bool{false, true} {
		first := hello
		if dialer {
			first = welcome
		}
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Body: mk(2, "jobs")}}, Msg{Done: &Done{}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Body: mk(3, "jobs")}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Body: mk(2, "payroll")}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Empties: []OriginHeld{{Origin: 3, Contig: 9}},
			Skips: []Skip{{Origin: 3, Seq: 4, Table: "jobs", ID: "y"}}}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{RecordReq: &RecordReq{Keys: []RecordKey{{Table: "jobs", ID: "x"}}}}, Msg{Records: &Records{}}))
	}
	f.Fuzz(func(t *testing.T, dialer bool, data []byte) {
		s := NewSession(local, dialer)
		s.Start()
		r := bytes.NewReader(data)
		for i := 0; i < 64 && !s.Finished(); i++ {
			m, _, err := ReadMsg(r)
			if err != nil {
				break
			}
			if _, err := s.Handle(m); err != nil {
				break
			}
		}
		for o := range st.Holdings() {
			if o != 1 && o != 2 {
				t.Fatalf("holds writes of origin %s, which the filter does not take", o)
			}
		}
		if recs, _, err := st.Scan("payroll", "", 1); err != nil || len(recs) > 0 {
			t.Fatalf("a payroll record was stored (%v)", err)
		}
	})
}

// A device peer's tombstone horizon is not adopted, filtered or not (a
// forged one would collect deleted records early); nor is that of a hub
// that dialed in unauthenticated. A hub this side dialed brings it.
func TestWriteFilterIgnoresHorizon(t *testing.T) {
	for _, c := range []struct {
		filtered, dialer bool
		role             string
		adopt            bool
	}{{true, false, "device", false}, {false, false, "device", false}, {false, false, "hub", false}, {false, true, "hub", true}} {
		filtered := c.filtered
		st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: 1})
		if err != nil {
			t.Fatal(err)
		}
		local := &Local{Node: 1, Cluster: "c", Role: "device", Scope: FullScope(), Clock: hlc.NewClock(nil, hlc.DefaultMaxOffset), Store: st}
		if filtered {
			local.Filter = relayFilter()
		}
		s := NewSession(local, c.dialer)
		s.Start()
		if c.dialer {
			if _, err := s.Handle(Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: c.role, Scope: FullScope()}}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.Handle(Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: c.role, Scope: FullScope()}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Handle(Msg{Have: &Have{GC: []uint64{9, 5}}}); err != nil {
			t.Fatal(err)
		}
		h, err := st.GCHorizon()
		if err != nil {
			t.Fatal(err)
		}
		if adopted := len(h) > 0; adopted != c.adopt {
			t.Errorf("%+v: horizon after the peer's Have: %v", c, h)
		}
		st.Close()
	}
}
