package source

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/query/ordkey"
	"github.com/replicad/replicad/store"
)

var modelSeed = flag.Uint64("query.seed", 0, "seed of TestQueryModel (0: from the time, printed)")

// The model's times (query/internal/modeltest: the replica model that
// TestQueryModel drives).
const (
	t0    = modeltest.T0
	nowMs = modeltest.NowMs
)

// model is the shared replica model with this test's brute-force
// evaluation and paged walks.
type model struct{ *modeltest.Model }

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
	q := query.Query{Table: "t", Where: wheres[m.Rng.IntN(len(wheres))], Order: orders[m.Rng.IntN(len(orders))], Limit: 1 + m.Rng.IntN(7)}
	if m.Rng.IntN(4) == 0 {
		q.Fields = []string{"owner", "prio"}
	}
	return q
}

var env = query.Env{NowMs: nowMs, Device: map[string]string{"user": "b"}}

// brute evaluates q over every record's view, independently of the
// package: a full scan, the filter, the order by comparing encoded
// values field by field.
func (m *model) brute(q query.Query) []query.Record {
	t := m.T
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
		page, next, err := m.R.S.Scan("t", after, 100)
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
			m.T.Fatal("more than 1000 pages")
		}
		res, err := Run(m.R.S, q, env)
		if err != nil {
			m.T.Fatalf("query %+v: %v", q, err)
		}
		if len(res.Records) > q.Limit {
			m.T.Fatalf("query %+v: %d records on a page of %d", q, len(res.Records), q.Limit)
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
			m.Step()
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
		m := &model{modeltest.New(t, rng, modeltest.Open(t, fmt.Sprint("/m", run), t0),
			modeltest.Open(t, fmt.Sprint("/p", run), t0+500), modeltest.Open(t, fmt.Sprint("/q", run), t0+900))}
		for i := 0; i < 60; i++ {
			m.Step()
		}
		if indexed {
			for _, d := range []store.IndexDef{
				{Name: "by_status", Table: "t", Fields: []string{"status"}},
				{Name: "by_owner_prio", Table: "t", Fields: []string{"owner", "prio"}},
				{Name: "by_prio", Table: "t", Fields: []string{"prio"}},
				{Name: "by_owner_status", Table: "t", Fields: []string{"owner", "status"}},
			} {
				if err := m.R.S.DeclareIndex(d); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.R.S.WaitIndexes(); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 120; i++ {
			for j := rng.IntN(4); j > 0; j-- {
				m.Step()
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
			res, err := Run(m.R.S, cq, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Count != len(want) {
				t.Fatalf("seed %d run %d query %+v: count %d, want %d", seed, run, q, res.Count, len(want))
			}
			// Pages while writes continue.
			if i%3 == 0 {
				m.Touched = map[string]bool{}
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
					if m.Touched[r.ID] || !inAfter[r.ID] {
						continue
					}
					if seen[r.ID] != 1 {
						t.Fatalf("seed %d run %d query %+v: record %s stayed in the result untouched and was returned %d times (walk %v)", seed, run, q, r.ID, seen[r.ID], ids(got))
					}
				}
				for id, n := range seen {
					if n > 1 && !m.Touched[id] {
						t.Fatalf("seed %d run %d query %+v: untouched record %s returned %d times", seed, run, q, id, n)
					}
				}
			}
		}
		if err := m.R.S.Verify(); err != nil {
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
