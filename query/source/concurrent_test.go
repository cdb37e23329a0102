package source

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/store"
)

// TestQueryConcurrent: queries run while writers change records and an
// index is declared (built in the background meanwhile) and dropped: each
// answer equals a brute-force evaluation over the same snapshot, so the
// index a query uses always agrees with the records it reads. Run it
// with -race.
func TestQueryConcurrent(t *testing.T) {
	r := modeltest.Open(t, "/concurrent", t0)
	for i := 0; i < 300; i++ {
		fs := []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue(fmt.Sprint("o", i%7))}, {Name: "prio", Value: crdt.MustValue(int64(i % 5))}}
		if _, err := r.S.Write(r.Clock, "t", fmt.Sprintf("%03d", i), fs, false); err != nil {
			t.Fatal(err)
		}
	}
	// Writers take a token per write: the query loop hands out 10 per
	// query, so writes overlap the queries without outrunning them.
	tokens := make(chan struct{}, 20)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for range tokens {
				if stop.Load() {
					return
				}
				id := fmt.Sprintf("%03d", rng.IntN(300))
				del := rng.IntN(6) == 0
				var fs []crdt.FieldValue
				if !del {
					fs = []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue(fmt.Sprint("o", rng.IntN(7)))}, {Name: "prio", Value: crdt.MustValue(int64(rng.IntN(5)))}}
				}
				if _, err := r.S.Write(r.Clock, "t", id, fs, del); err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(w))
	}
	used := 0
	for i := 0; i < 100 && !t.Failed(); i++ {
		// The index is declared (built in the background) and dropped while
		// the writers run.
		switch i % 20 {
		case 0:
			if err := r.S.DeclareIndex(store.IndexDef{Name: "by_owner_prio", Table: "t", Fields: []string{"owner", "prio"}}); err != nil {
				t.Fatal(err)
			}
		case 15:
			if err := r.S.DropIndex("by_owner_prio"); err != nil {
				t.Fatal(err)
			}
		}
		for j := 0; j < 10; j++ {
			select {
			case tokens <- struct{}{}:
			default: // writers behind (or failed): do not wait for them
			}
		}
		q := query.Query{Table: "t", Where: fmt.Sprintf("owner == 'o%d' && prio >= %d", i%7, i%3), Order: []string{"prio"}, Limit: 1000, Explain: true}
		src, err := Open(r.S)
		if err != nil {
			t.Fatal(err)
		}
		res, err := query.Execute(src, q, env)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := filter.Compile(q.Where)
		var want []string
		for p := int64(0); p < 5; p++ {
			if err := src.Scan("t", "", func(id string, rec *crdt.Record) bool {
				v, _ := rec.Get("prio")
				if rec.Exists() && x.Match(id, rec, filter.Env{NowMs: env.NowMs}) && string(v) == string(crdt.MustValue(p)) {
					want = append(want, id)
				}
				return true
			}); err != nil {
				t.Fatal(err)
			}
		}
		src.Close()
		if res.Plan.Index != nil {
			used++
		}
		if len(res.Records) != len(want) {
			t.Fatalf("query %d (plan %v): %d records, want %d", i, res.Plan.Index != nil, len(res.Records), len(want))
		}
		for j := range want {
			if res.Records[j].ID != want[j] {
				t.Fatalf("query %d (plan %v): record %d is %s, want %s", i, res.Plan.Index != nil, j, res.Records[j].ID, want[j])
			}
		}
	}
	stop.Store(true)
	close(tokens)
	wg.Wait()
	if err := r.S.Verify(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of 100 queries used the index", used)
	if used == 0 {
		t.Error("no query used the index")
	}
}
