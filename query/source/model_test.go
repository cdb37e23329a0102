package source

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/ordkey"
	"github.com/replicad/replicad/store"
)

var modelSeed = flag.Uint64("query.seed", 0, "seed of TestQueryModel (0: from the time, printed)")

const (
	t0    = 1_700_000_000_000
	nowMs = t0 + 10*24*3600*1000
	nIDs  = 30
)

func clockAt(start int64) *hlc.Clock {
	var ms atomic.Int64
	ms.Store(start)
	return hlc.NewClock(func() int64 { return ms.Add(1) }, time.Minute)
}

type replica struct {
	s     *store.Store
	clock *hlc.Clock
}

func open(t *testing.T, dir string, start int64) *replica {
	s, err := store.Open(store.Options{Dir: dir, FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &replica{s: s, clock: clockAt(start)}
}

// model drives a replica with random changes of every kind and checks
// random queries against a brute-force evaluation of the records' views.
type model struct {
	t       *testing.T
	rng     *rand.Rand
	r       *replica
	peers   []*replica
	sent    []uint64
	retired map[string]bool // purged or collected: never written again
	touched map[string]bool // written since the last reset
}

func (m *model) value(field string) any {
	switch field {
	case "status":
		return []any{"open", "done", "open", nil, "2026-01-02"}[m.rng.IntN(5)]
	case "owner":
		return []any{"a", "b", "c", "a"}[m.rng.IntN(4)]
	case "prio":
		return []any{int64(1), int64(2), int64(3), 2.5, "high", true, int64(1) << 60}[m.rng.IntN(7)]
	}
	return []any{int64(m.rng.IntN(3)), "x", []any{int64(1)}, nil}[m.rng.IntN(4)]
}

func (m *model) fields() []crdt.FieldValue {
	var fs []crdt.FieldValue
	for _, f := range []string{"status", "owner", "prio", "x"} {
		if m.rng.IntN(3) > 0 {
			fs = append(fs, crdt.FieldValue{Name: f, Value: crdt.MustValue(m.value(f))})
		}
	}
	if len(fs) == 0 {
		fs = append(fs, crdt.FieldValue{Name: "owner", Value: crdt.MustValue("a")})
	}
	return fs
}

// step makes one random change.
func (m *model) step() {
	t, rng := m.t, m.rng
	id := fmt.Sprintf("j%02d", rng.IntN(nIDs))
	op := rng.IntN(20)
	if m.retired[id] && op < 17 {
		return
	}
	switch {
	case op < 7: // local write, delete or re-creation
		if m.r.s.Hidden("t", id) {
			return
		}
		del := rng.IntN(5) == 0
		var fs []crdt.FieldValue
		if !del {
			fs = m.fields()
		}
		if _, err := m.r.s.Write(m.r.clock, "t", id, fs, del); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 13: // peers write concurrently; their writes arrive
		i := rng.IntN(len(m.peers))
		p := m.peers[i]
		for n := 1 + rng.IntN(3); n > 0; n-- {
			pid := fmt.Sprintf("j%02d", rng.IntN(nIDs))
			if m.retired[pid] {
				continue
			}
			del := rng.IntN(6) == 0
			var fs []crdt.FieldValue
			if !del {
				fs = m.fields()
			}
			if _, err := p.s.Write(p.clock, "t", pid, fs, del); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			return // not delivered yet: a later batch or a merge brings them
		}
		var ws []*crdt.Write
		if err := p.s.Stream(p.s.NodeID(), m.sent[i], func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
			t.Fatal(err)
		}
		m.sent[i] += uint64(len(ws))
		purge := rng.IntN(5) == 0 && len(ws) > 0
		var pw *crdt.Write
		if purge {
			pw = ws[rng.IntN(len(ws))]
		}
		if _, err := m.r.s.ApplyRemoteWith(m.r.clock, ws, nil, func(b *store.Batch, _ *store.Result) error {
			if purge {
				b.Purge(pw.Table, pw.ID, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			m.touched[w.ID] = true
		}
		if purge {
			m.retired[pw.ID] = true
		}
	case op < 15: // a peer's whole record merged
		p := m.peers[rng.IntN(len(m.peers))]
		rec, err := p.s.GetAny("t", id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.r.s.MergeRecord(m.r.clock, "t", id, rec); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 17: // the scope narrows and widens: hide, show, purge
		hidden := m.r.s.Hidden("t", id)
		if err := m.r.s.Update(func(b *store.Batch) error {
			if rng.IntN(3) == 0 {
				b.Purge("t", id, nil)
				m.retired[id] = true
			} else {
				b.SetHidden("t", id, !hidden, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 18: // tombstone collection once every replica has every write
		m.collect()
	}
}

func (m *model) collect() {
	t := m.t
	all := []*replica{m.r}
	all = append(all, m.peers...)
	for round := 0; round < 2; round++ {
		for _, src := range all {
			for _, dst := range all {
				if src == dst {
					continue
				}
				for o := range src.s.Holdings() {
					var ws []*crdt.Write
					if err := src.s.Stream(o, dst.s.HeldOf(o).Contig, func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
						t.Fatal(err)
					}
					if len(ws) == 0 {
						continue
					}
					if _, err := dst.s.ApplyRemote(dst.clock, ws, nil); err != nil {
						t.Fatal(err)
					}
					if dst == m.r {
						for _, w := range ws {
							m.touched[w.ID] = true
						}
					}
				}
			}
		}
	}
	for i, p := range m.peers {
		m.sent[i] = m.r.s.HeldOf(p.s.NodeID()).Contig
	}
	var h crdt.VV
	for o, held := range m.r.s.Holdings() {
		if held.Contig > 0 {
			h.Set(crdt.Dot{Node: o, Seq: held.Contig})
		}
	}
	stored := map[string]bool{}
	for i := 0; i < nIDs; i++ {
		id := fmt.Sprintf("j%02d", i)
		for _, r := range all {
			if _, err := r.s.GetAny("t", id); err == nil {
				stored[id] = true
			}
		}
	}
	for _, r := range all {
		if _, err := r.s.RaiseGCHorizon(h); err != nil {
			t.Fatal(err)
		}
		if _, err := r.s.Collect(0); err != nil {
			t.Fatal(err)
		}
	}
	for id := range stored {
		for _, r := range all {
			if _, err := r.s.GetAny("t", id); errors.Is(err, store.ErrNotFound) {
				m.retired[id] = true
				m.touched[id] = true
			}
		}
	}
}

var wheres = []string{
	"",
	"status == 'open'",
	"owner == 'a' && prio >= 2",
	"owner == 'b' && prio == 2",
	"prio > 1",
	"prio < 3 && status != 'done'",
	"owner == device.user",
	"status == null",
	"prio == 2.5 || owner == 'c'",
	"owner == 'a' && status == 'open'",
	"prio == 1152921504606846976",
	"x == 1 && owner >= 'b'",
	"status == '2026-01-02'",
	"id >= 'j10' && owner == 'c'",
	"prio >= 1 && prio <= 2 && owner == 'a'",
	"status >= today - days(400)",
}

var orders = [][]string{nil, {"prio"}, {"-prio"}, {"owner", "prio"}, {"-owner", "-prio"}, {"status", "-id"}, {"x"}, {"-id"}, {"owner"}, {"prio", "owner"}}

func (m *model) randQuery() query.Query {
	q := query.Query{Table: "t", Where: wheres[m.rng.IntN(len(wheres))], Order: orders[m.rng.IntN(len(orders))], Limit: 1 + m.rng.IntN(7)}
	if m.rng.IntN(4) == 0 {
		q.Fields = []string{"owner", "prio"}
	}
	return q
}

var env = query.Env{NowMs: nowMs, Device: map[string]string{"user": "b"}}

// brute evaluates q over every record's view, independently of the
// package: a full scan, the filter, the order by comparing encoded
// values field by field.
func (m *model) brute(q query.Query) []query.Record {
	t := m.t
	var x *filter.Expr
	if q.Where != "" {
		var err error
		if x, err = filter.Compile(q.Where); err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		id   string
		keys [][]byte
		rec  *crdt.Record
	}
	var rows []row
	after := ""
	for {
		page, next, err := m.r.s.Scan("t", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if !e.Record.Exists() || (x != nil && !x.Match(e.ID, e.Record, filter.Env{NowMs: env.NowMs, Device: env.Device})) {
				continue
			}
			r := row{id: e.ID, rec: e.Record}
			for _, f := range q.Order {
				f = strings.TrimPrefix(f, "-")
				if f == "id" {
					continue
				}
				v, _ := e.Record.Get(f)
				r.keys = append(r.keys, ordkey.Append(nil, v))
			}
			rows = append(rows, r)
		}
		if next == "" {
			break
		}
		after = next
	}
	sort.Slice(rows, func(i, j int) bool {
		k := 0
		for _, f := range q.Order {
			desc := strings.HasPrefix(f, "-")
			if strings.TrimPrefix(f, "-") == "id" {
				if desc {
					return rows[i].id > rows[j].id
				}
				break
			}
			c := bytes.Compare(rows[i].keys[k], rows[j].keys[k])
			k++
			if desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return rows[i].id < rows[j].id
	})
	out := make([]query.Record, len(rows))
	for i, r := range rows {
		out[i] = query.Record{ID: r.id, Fields: map[string]crdt.Value{}}
		r.rec.Visible(func(name string, v crdt.Value) {
			if len(q.Fields) == 0 || name == "owner" || name == "prio" {
				out[i].Fields[name] = v
			}
		})
	}
	return out
}

func sameRecords(a, b []query.Record) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d records, want %d (%v / %v)", len(a), len(b), ids(a), ids(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || len(a[i].Fields) != len(b[i].Fields) {
			return fmt.Sprintf("record %d: %s %d fields, want %s %d fields (%v / %v)", i, a[i].ID, len(a[i].Fields), b[i].ID, len(b[i].Fields), ids(a), ids(b))
		}
		for k, v := range b[i].Fields {
			if !bytes.Equal(a[i].Fields[k], v) {
				return fmt.Sprintf("record %s field %s: %v, want %v", a[i].ID, k, a[i].Fields[k], v)
			}
		}
	}
	return ""
}

func ids(rs []query.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// walk reads every page of q; between pages, writes (steps) random changes.
func (m *model) walk(q query.Query, steps int) (all []query.Record, plans map[string]bool) {
	plans = map[string]bool{}
	q.Explain = true
	for pages := 0; ; pages++ {
		if pages > 1000 {
			m.t.Fatal("more than 1000 pages")
		}
		res, err := Run(m.r.s, q, env)
		if err != nil {
			m.t.Fatalf("query %+v: %v", q, err)
		}
		if len(res.Records) > q.Limit {
			m.t.Fatalf("query %+v: %d records on a page of %d", q, len(res.Records), q.Limit)
		}
		name := "scan"
		if res.Plan.Index != nil {
			name = *res.Plan.Index
		}
		plans[name] = true
		all = append(all, res.Records...)
		if res.Next == "" {
			return all, plans
		}
		q.Cursor = res.Next
		for i := 0; i < steps; i++ {
			m.step()
		}
	}
}

// TestQueryModel: random changes of every kind against random queries,
// with and without indexes: every answer walked with cursors equals a
// brute-force evaluation over the records' views, count included; pages
// walked while writes continue return each record that stayed in the
// result (untouched by the writes) exactly once.
func TestQueryModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-query.seed to repeat)", seed)
	plans := map[string]bool{}
	for run := uint64(0); run < 6; run++ {
		indexed := run%2 == 1
		rng := rand.New(rand.NewPCG(seed, run))
		m := &model{t: t, rng: rng, r: open(t, fmt.Sprint("/m", run), t0), retired: map[string]bool{}, touched: map[string]bool{}}
		m.peers = []*replica{open(t, fmt.Sprint("/p", run), t0+500), open(t, fmt.Sprint("/q", run), t0+900)}
		m.sent = make([]uint64, len(m.peers))
		for i := 0; i < 60; i++ {
			m.step()
		}
		if indexed {
			for _, d := range []store.IndexDef{
				{Name: "by_status", Table: "t", Fields: []string{"status"}},
				{Name: "by_owner_prio", Table: "t", Fields: []string{"owner", "prio"}},
				{Name: "by_prio", Table: "t", Fields: []string{"prio"}},
				{Name: "by_owner_status", Table: "t", Fields: []string{"owner", "status"}},
			} {
				if err := m.r.s.DeclareIndex(d); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.r.s.WaitIndexes(); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 120; i++ {
			for j := rng.IntN(4); j > 0; j-- {
				m.step()
			}
			q := m.randQuery()
			want := m.brute(q)
			got, used := m.walk(q, 0)
			for p := range used {
				plans[p] = true
			}
			if msg := sameRecords(got, want); msg != "" {
				t.Fatalf("seed %d run %d query %d %+v (plans %v): %s", seed, run, i, q, used, msg)
			}
			cq := q
			cq.Count, cq.Limit = true, 0
			res, err := Run(m.r.s, cq, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Count != len(want) {
				t.Fatalf("seed %d run %d query %+v: count %d, want %d", seed, run, q, res.Count, len(want))
			}
			// Pages while writes continue.
			if i%3 == 0 {
				m.touched = map[string]bool{}
				before := m.brute(q)
				got, _ := m.walk(q, 1+rng.IntN(3))
				after := m.brute(q)
				inAfter := map[string]bool{}
				for _, r := range after {
					inAfter[r.ID] = true
				}
				seen := map[string]int{}
				for _, r := range got {
					seen[r.ID]++
				}
				for _, r := range before {
					if m.touched[r.ID] || !inAfter[r.ID] {
						continue
					}
					if seen[r.ID] != 1 {
						t.Fatalf("seed %d run %d query %+v: record %s stayed in the result untouched and was returned %d times (walk %v)", seed, run, q, r.ID, seen[r.ID], ids(got))
					}
				}
				for id, n := range seen {
					if n > 1 && !m.touched[id] {
						t.Fatalf("seed %d run %d query %+v: untouched record %s returned %d times", seed, run, q, id, n)
					}
				}
			}
		}
		if err := m.r.s.Verify(); err != nil {
			t.Fatalf("seed %d run %d: %v", seed, run, err)
		}
	}
	t.Logf("plans used: %v", plans)
	for _, want := range []string{"scan", "by_status", "by_owner_prio", "by_prio"} {
		if !plans[want] {
			t.Errorf("no query used plan %s", want)
		}
	}
}
