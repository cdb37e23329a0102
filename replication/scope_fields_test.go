package replication

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

func TestRestrict(t *testing.T) {
	statusOnly := Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"status"}}}}
	errs := TableScope{Table: "_replicad_errors", Filter: `"00000000000000aa" in nodes`}
	for _, c := range []struct {
		name     string
		s, lim   Scope
		want     string
		wantErr  bool // Validate refuses s
		wantKeep []string
	}{
		{name: "all, no limit", s: FullScope(), lim: FullScope(), want: "all"},
		{name: "all to status", s: FullScope(), lim: statusOnly, want: "jobs(status)"},
		{name: "all to none", s: FullScope(), lim: Scope{}, want: "none"},
		{name: "table list to status", s: TablesScope("customers", "jobs"), lim: statusOnly, want: "jobs(status)"},
		{name: "fields intersect", s: Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"notes", "status"}}}},
			lim: Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"price", "status"}}}}, want: "jobs(status)"},
		{name: "filter on a readable field stays", s: Scope{Tables: []TableScope{{Table: "jobs", Filter: "status == 'open'"}}}, lim: statusOnly,
			want: "jobs{status == 'open'}(status)"},
		{name: "filter on a hidden field leaves the table out", s: Scope{Tables: []TableScope{{Table: "jobs", Filter: "owner == 'x'"}}}, lim: statusOnly, want: "none"},
		{name: "where on a hidden field leaves the table out", s: Scope{Tables: []TableScope{{Table: "jobs", Where: []FieldMatch{{Field: "owner", Value: crdt.MustValue("x")}}}}}, lim: statusOnly, want: "none"},
		{name: "relation through a hidden field leaves the related table out",
			s:   Scope{Tables: []TableScope{{Table: "customers", Related: []Relation{{Table: "jobs", Field: "customer"}}}, {Table: "jobs"}}},
			lim: Scope{Tables: []TableScope{{Table: "customers"}, {Table: "jobs", Projected: true, Fields: []string{"status"}}}}, want: "jobs(status)"},
		{name: "relation to a table left out", s: Scope{Tables: []TableScope{{Table: "customers", Related: []Relation{{Table: "jobs", Field: "customer"}}}, {Table: "jobs"}}},
			lim: Scope{Tables: []TableScope{{Table: "customers"}}}, want: "none"},
		{name: "own errors", s: FullScope(), lim: Scope{Tables: []TableScope{errs, {Table: "jobs"}}}, want: `_replicad_errors{"00000000000000aa" in nodes},jobs`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.s.Restrict(c.lim)
			if got.String() != c.want {
				t.Fatalf("Restrict = %s, want %s", got, c.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("restricted scope invalid: %v", err)
			}
			if again := got.Restrict(c.lim); !reflect.DeepEqual(again, got) {
				t.Fatalf("Restrict not idempotent: %s then %s", got, again)
			}
		})
	}
	// Validate refuses what Restrict never makes.
	for _, bad := range []Scope{
		{Tables: []TableScope{{Table: "jobs", Fields: []string{"a"}}}},
		{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"b", "a"}}}},
		{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"a"}, Filter: "b == 1"}}},
		{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"a"}, Filter: "record['a'] == 1"}}},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate accepts %+v", bad)
		}
	}
	// Covers: a projected table covers only what holds no more fields.
	whole, st := TablesScope("jobs"), statusOnly
	if !whole.Covers(st) || st.Covers(whole) || !st.Covers(st) {
		t.Fatalf("Covers: whole>status %v status>whole %v status>status %v", whole.Covers(st), st.Covers(whole), st.Covers(st))
	}
}

func TestProjectWrite(t *testing.T) {
	sc := Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"status"}}}}
	w := &crdt.Write{Table: "jobs", ID: "j", Origin: 1, Seq: 1, TS: 1, Fields: []crdt.FieldValue{
		{Name: "notes", Value: crdt.MustValue("secret")}, {Name: "status", Value: crdt.MustValue("open")}}}
	for _, c := range []struct {
		w    *crdt.Write
		want []string
	}{
		{w, []string{"status"}},
		{&crdt.Write{Table: "jobs", ID: "j", Origin: 1, Seq: 2, TS: 2, Fields: []crdt.FieldValue{{Name: "notes", Value: crdt.MustValue("x")}}}, []string{}},
		{&crdt.Write{Table: "other", ID: "j", Origin: 1, Seq: 3, TS: 3, Fields: w.Fields}, []string{"notes", "status"}},
		{&crdt.Write{Table: "jobs", ID: "j", Origin: 1, Seq: 4, TS: 4, Delete: true}, []string{}},
		// An elided write keeps its names (no values) rather than none.
		{(&crdt.Write{Table: "jobs", ID: "j", Origin: 1, Seq: 5, TS: 5, Fields: []crdt.FieldValue{{Name: "notes", Value: crdt.MustValue("x")}}}).Elide(), []string{"notes"}},
	} {
		p := sc.ProjectWrite(c.w)
		names := []string{}
		for _, f := range p.Fields {
			names = append(names, f.Name)
		}
		if fmt.Sprint(names) != fmt.Sprint(c.want) {
			t.Errorf("write %d: projected fields %v, want %v", c.w.Seq, names, c.want)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("write %d: projection invalid: %v", c.w.Seq, err)
		}
	}
	// A projected record is the record of the projected writes.
	var full, proj crdt.Record
	for _, x := range []*crdt.Write{w, {Table: "jobs", ID: "j", Origin: 2, Seq: 1, TS: 3, Ctx: crdt.VV{{Node: 1, Seq: 1}}, Fields: []crdt.FieldValue{{Name: "notes", Value: crdt.MustValue("b")}}}} {
		full.Apply(x, nil)
		proj.Apply(sc.ProjectWrite(x), nil)
	}
	a, _ := sc.ProjectRecord("jobs", &full).MarshalBinary()
	b, _ := proj.MarshalBinary()
	if string(a) != string(b) {
		t.Fatal("projection of the applied writes differs from the applied projections")
	}
}

// readSim is a hub, a device restricted to jobs:status (rules on the
// hub, and on the peer device that knows them), and an unrestricted
// device.
type readSim struct {
	*sim
	hub, tech, other *simNode
	limit            map[hlc.NodeID]Scope
}

func newReadSim(t *testing.T) *readSim {
	s := &readSim{sim: newSim(t), limit: map[hlc.NodeID]Scope{}}
	s.hub = s.add("hub", "hub", FullScope())
	s.tech = s.add("tech", "device", FullScope())
	s.other = s.add("other", "device", FullScope())
	s.limit[s.tech.local.Node] = Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"status"}}}}
	limit := func(p Peer) (Scope, bool) {
		l, ok := s.limit[p.Node]
		return l, ok
	}
	s.hub.local.Limit = limit
	s.hub.local.Assign = func(p Peer) (Scope, bool) {
		if l, ok := limit(p); ok {
			return FullScope().Restrict(l), true
		}
		return FullScope(), true
	}
	s.other.local.Limit = limit
	return s
}

// watch runs a session, a dialing b, failing if any message to the
// restricted device carries a table or field its limit leaves out.
func (s *readSim) watch(a, b *simNode) {
	s.t.Helper()
	sa, sb := NewSession(a.local, true), NewSession(b.local, false)
	toB, toA := sa.Start(), sb.Start()
	for !(sa.Finished() && sb.Finished()) {
		if len(toA) == 0 && len(toB) == 0 {
			s.t.Fatalf("session %s-%s stalled", a.name, b.name)
		}
		var m Msg
		var dst *Session
		var to, from *simNode
		if len(toA) == 0 || (len(toB) > 0 && s.rng.IntN(2) == 0) {
			m, toB, dst, to, from = toB[0], toB[1:], sb, b, a
		} else {
			m, toA, dst, to, from = toA[0], toA[1:], sa, a, b
		}
		enc, err := EncodeMsg(m)
		if err != nil {
			s.t.Fatal(err)
		}
		m2, err := DecodeMsg(enc)
		if err != nil {
			s.t.Fatal(err)
		}
		if lim, ok := s.limit[to.local.Node]; ok {
			s.checkMsg(from, to, lim, m2)
		}
		out, err := dst.Handle(m2)
		if dst == sa {
			toB = append(toB, out...)
		} else {
			toA = append(toA, out...)
		}
		if err != nil {
			s.t.Fatalf("session %s-%s: %v", a.name, b.name, err)
		}
	}
}

func (s *readSim) checkMsg(from, to *simNode, lim Scope, m Msg) {
	s.t.Helper()
	allowed := func(table, field string) bool {
		return IsSystemTable(table) || lim.lists([]byte(table)) && (field == "" || lim.FieldAllowed(table, field))
	}
	if c := m.Chunk; c != nil {
		ws, err := decodeChunkWrites(c.Body, from.local.Node, to.local.Node)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, w := range ws {
			if !allowed(w.Table, "") {
				s.t.Fatalf("%s sent %s write %s/%s of a table it may not read", from.name, to.name, w.Table, w.ID)
			}
			for _, f := range w.Fields {
				if !allowed(w.Table, f.Name) && !w.Elided {
					s.t.Fatalf("%s sent %s field %s of %s/%s", from.name, to.name, f.Name, w.Table, w.ID)
				}
			}
		}
		for _, k := range c.Skips {
			if !allowed(k.Table, "") {
				s.t.Fatalf("%s sent %s a skip of %s/%s", from.name, to.name, k.Table, k.ID)
			}
		}
	}
	if r := m.Records; r != nil {
		for _, rs := range r.Recs {
			if rs.State == nil {
				continue
			}
			var rec crdt.Record
			if err := rec.UnmarshalBinary(rs.State); err != nil {
				s.t.Fatal(err)
			}
			if !allowed(rs.Table, "") {
				s.t.Fatalf("%s sent %s record %s/%s", from.name, to.name, rs.Table, rs.ID)
			}
			for _, f := range rec.Fields {
				if !allowed(rs.Table, f.Name) {
					s.t.Fatalf("%s sent %s field %s of record %s/%s", from.name, to.name, f.Name, rs.Table, rs.ID)
				}
			}
		}
		for _, l := range r.Listed {
			if !allowed(l.Table, "") {
				s.t.Fatalf("%s listed %s/%s to %s", from.name, l.Table, l.ID, to.name)
			}
		}
	}
}

// fields returns the fields n shows of table/id ("" if it shows none).
func fieldsOf(t *testing.T, n *simNode, table, id string) string {
	t.Helper()
	rec, err := n.st.Get(table, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ""
		}
		t.Fatal(err)
	}
	out := map[string]string{}
	rec.Visible(func(name string, v crdt.Value) { out[name] = v.String() })
	return fmt.Sprint(out)
}

// storedFields returns every field name n's store holds for table/id,
// hidden or not, and in its change log.
func storedFields(t *testing.T, n *simNode, table string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for o := range n.st.Holdings() {
		err := n.st.Stream(o, 0, func(w *crdt.Write) error {
			if w.Table == table {
				for _, f := range w.Fields {
					if !w.Elided {
						out[f.Name] = true
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tables, _ := n.st.Tables()
	for _, tb := range tables {
		if tb != table {
			continue
		}
		page, _, _ := n.st.Scan(tb, "", 1000)
		for _, e := range page {
			for _, f := range e.Record.Fields {
				out[f.Name] = true
			}
		}
	}
	return out
}

// TestReadPermissions: a device allowed to read jobs:status never
// receives another table or field, whoever dials, through writes, whole
// records it asks for, listings, or a peer device; the rest of the
// cluster loses nothing by it.
func TestReadPermissions(t *testing.T) {
	s := newReadSim(t)
	hub, tech, other := s.hub, s.tech, s.other
	s.write(hub, "jobs", "j1", map[string]any{"status": "open", "notes": "gate code 1234", "price": 90}, false)
	s.write(hub, "customers", "c1", map[string]any{"name": "ACME"}, false)
	s.write(hub, "_replicad_policy", "jobs", map[string]any{"policy": "lww"}, false)

	s.watch(tech, hub) // the device dials
	if got := fieldsOf(t, tech, "jobs", "j1"); got != `map[status:"open"]` {
		t.Fatalf("tech shows j1 %s", got)
	}
	if got := fieldsOf(t, tech, "customers", "c1"); got != "" {
		t.Fatalf("tech shows c1 %s", got)
	}
	if _, err := tech.st.Get("_replicad_policy", "jobs"); err != nil {
		t.Fatalf("tech lacks the system table: %v", err)
	}
	if sc := tech.local.CurrentScope(); sc.String() != "jobs(status)" {
		t.Fatalf("tech adopted scope %s", sc)
	}

	// The hub dials (its session serves the device's declared scope,
	// restricted all the same), after new writes to every field.
	s.write(hub, "jobs", "j1", map[string]any{"status": "done", "notes": "n2"}, false)
	s.write(hub, "jobs", "j2", map[string]any{"notes": "only notes"}, false)
	s.write(hub, "customers", "c2", map[string]any{"name": "B"}, false)
	tech.local.Scope, tech.local.dyn = FullScope(), nil // as if it declared everything
	s.watch(hub, tech)
	tech.local.SetScope(FullScope().Restrict(s.limit[tech.local.Node]))
	s.watch(tech, hub)
	if got := fieldsOf(t, tech, "jobs", "j1"); got != `map[status:"done"]` {
		t.Fatalf("tech shows j1 %s", got)
	}
	if got := fieldsOf(t, tech, "jobs", "j2"); got != `map[]` {
		t.Fatalf("tech shows j2 %s (it exists, with no readable field)", got)
	}
	for f := range storedFields(t, tech, "jobs") {
		if f != "status" {
			t.Fatalf("tech's store holds jobs field %q", f)
		}
	}
	if len(storedFields(t, tech, "customers")) > 0 {
		t.Fatal("tech's store holds customers")
	}

	// A device that asks for records whole, or listings, by hand (as a
	// hostile one would) gets nothing more.
	s.askRecords(tech, hub, &RecordReq{Keys: []RecordKey{{Table: "customers", ID: "c1"}, {Table: "jobs", ID: "j1"}}, Held: []RecordKey{{Table: "customers", ID: "c2"}, {Table: "jobs", ID: "j2"}}})
	s.askRecords(tech, hub, &RecordReq{Scan: []string{"customers", "jobs"}})

	// Through a peer device: other (unrestricted, knows tech's rules)
	// syncs with the hub, then tech with other, both ways.
	s.mustSync(other, hub)
	s.write(other, "jobs", "j3", map[string]any{"status": "new", "notes": "from other"}, false)
	s.write(other, "customers", "c3", map[string]any{"name": "C"}, false)
	s.watch(tech, other)
	s.watch(other, tech)
	if got := fieldsOf(t, tech, "jobs", "j3"); got != `map[status:"new"]` {
		t.Fatalf("tech shows j3 %s", got)
	}
	if got := fieldsOf(t, tech, "customers", "c3"); got != "" {
		t.Fatalf("tech shows c3 %s", got)
	}

	// tech relays nothing stripped to a device holding more: a fresh
	// device meets tech first, then the hub, and holds every field.
	fresh := s.add("fresh", "device", FullScope())
	s.write(tech, "jobs", "j1", map[string]any{"status": "checked"}, false)
	s.mustSync(fresh, tech)
	s.mustSync(tech, fresh)
	// fresh holds tech's own write (whole), none of the hub's writes
	// tech holds stripped.
	h := fresh.st.HeldOf(hub.local.Node)
	for _, w := range hub.acked {
		if w.Table == "jobs" && h.Contains(w.Seq) {
			t.Fatalf("fresh holds the hub's write %d to jobs/%s after meeting only tech", w.Seq, w.ID)
		}
	}
	s.mustSync(fresh, hub)
	s.mustSync(tech, hub)
	s.mustSync(fresh, hub)
	for _, id := range []string{"j1", "j2", "j3"} {
		if got, want := fieldsOf(t, fresh, "jobs", id), fieldsOf(t, hub, "jobs", id); got != want {
			t.Fatalf("fresh shows %s %s, the hub %s", id, got, want)
		}
	}
	if got := fieldsOf(t, hub, "jobs", "j1"); got != `map[notes:"n2" price:90 status:"checked"]` {
		t.Fatalf("hub shows j1 %s", got)
	}
}

// askRecords sends req from the restricted device to the hub's session
// by hand and checks the answer.
func (s *readSim) askRecords(dev, hub *simNode, req *RecordReq) {
	s.t.Helper()
	sd, sh := NewSession(dev.local, true), NewSession(hub.local, false)
	hello := sd.Start()
	sh.Start()
	hello[0].Hello.Scope = FullScope() // it declares everything
	if _, err := sh.Handle(hello[0]); err != nil {
		s.t.Fatal(err)
	}
	out, err := sh.Handle(Msg{Have: &Have{Origins: toWireHeld(dev.st.Holdings())}})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range out {
		s.checkMsg(hub, dev, s.limit[dev.local.Node], m)
	}
	out, err = sh.Handle(Msg{RecordReq: req})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(out) != 1 || out[0].Records == nil {
		s.t.Fatalf("answer %v", out)
	}
	s.checkMsg(hub, dev, s.limit[dev.local.Node], out[0])
	for _, rs := range out[0].Records.Recs {
		if rs.Table == "customers" && (!rs.Missing || len(rs.Applied) > 0) {
			s.t.Fatalf("customers/%s answered %+v, want Missing (not even whether it exists)", rs.ID, rs)
		}
	}
	if req.Scan != nil && len(out[0].Records.Listed) != 2 {
		s.t.Fatalf("listing %+v, want j1 and j2 of jobs only", out[0].Records.Listed)
	}
}

// TestReadPermissionsNarrow: a device reading jobs and customers whole
// syncs; its rules narrow to jobs:status; at the next session it holds
// no customer and no other field of jobs (in its records: purged and
// projected like a narrowed profile), and it widens again.
func TestReadPermissionsNarrow(t *testing.T) {
	s := newReadSim(t)
	hub, tech := s.hub, s.tech
	s.limit[tech.local.Node] = TablesScope("customers", "jobs")
	s.write(hub, "jobs", "j1", map[string]any{"status": "open", "notes": "secret"}, false)
	s.write(hub, "customers", "c1", map[string]any{"name": "ACME"}, false)
	s.watch(tech, hub)
	if got := fieldsOf(t, tech, "jobs", "j1"); got != `map[notes:"secret" status:"open"]` {
		t.Fatalf("before: tech shows j1 %s", got)
	}
	if got := fieldsOf(t, tech, "customers", "c1"); got == "" {
		t.Fatal("before: tech lacks c1")
	}

	s.limit[tech.local.Node] = Scope{Tables: []TableScope{{Table: "jobs", Projected: true, Fields: []string{"status"}}}}
	s.watch(tech, hub)
	if got := fieldsOf(t, tech, "jobs", "j1"); got != `map[status:"open"]` {
		t.Fatalf("narrowed: tech shows j1 %s", got)
	}
	if _, err := tech.st.Get("customers", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("narrowed: tech's c1: %v, want not found", err)
	}
	if rec, err := tech.st.GetAny("customers", "c1"); err == nil {
		t.Fatalf("narrowed: tech keeps c1's state %v", rec)
	}
	page, _, _ := tech.st.Scan("jobs", "", 100)
	for _, e := range page {
		for _, f := range e.Record.Fields {
			if f.Name != "status" {
				t.Fatalf("narrowed: tech's record %s holds %s", e.ID, f.Name)
			}
		}
	}
	// It keeps working: writes both ways.
	s.write(hub, "jobs", "j1", map[string]any{"status": "done", "notes": "more"}, false)
	s.write(tech, "jobs", "j1", map[string]any{"status": "checked"}, false)
	s.watch(tech, hub)
	s.watch(tech, hub)
	if got, want := fieldsOf(t, tech, "jobs", "j1"), `map[status:"checked"]`; got != want {
		t.Fatalf("narrowed: tech shows j1 %s, want %s", got, want)
	}
	if got := fieldsOf(t, hub, "jobs", "j1"); got != `map[notes:"more" status:"checked"]` {
		t.Fatalf("hub shows j1 %s", got)
	}

	// Widened again: the records come back whole from the hub.
	s.limit[tech.local.Node] = TablesScope("customers", "jobs")
	s.watch(tech, hub)
	if got, want := fieldsOf(t, tech, "jobs", "j1"), fieldsOf(t, hub, "jobs", "j1"); got != want {
		t.Fatalf("widened: tech shows j1 %s, the hub %s", got, want)
	}
	if got := fieldsOf(t, tech, "customers", "c1"); got != `map[name:"ACME"]` {
		t.Fatalf("widened: tech shows c1 %s", got)
	}
}
