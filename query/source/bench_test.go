package source

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/querybench"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/store"
)

// The query benchmarks run on the store of package querybench (1,000,000
// records of 20 fields by default, 50 per owner, the index by_owner),
// shared with internal/httpapi's HTTP query benchmark.
const benchPerOwner = querybench.PerOwner

func TestMain(m *testing.M) {
	code := m.Run()
	querybench.Cleanup()
	os.Exit(code)
}

func buildBenchStore(b *testing.B) (string, int) {
	dir, n, err := querybench.Store("query bench")
	if err != nil {
		b.Fatal(err)
	}
	return dir, n
}

func rawRange(b *testing.B, db *pebble.DB, lo, hi string, decode bool) int {
	n, err := querybench.RawRange(db, lo, hi, decode)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func openRawDB(b *testing.B, dir string) *pebble.DB {
	db, err := querybench.OpenRaw(dir)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkQueryIndexed: a query by equality on an indexed field
// returning 50 records (owner == X, limit 50), in-process (snapshot,
// plan, index range, 50 record reads, the where clause, the views);
// against raw Pebble iterating over the same 50 records' keys and
// decoding them. Warm cache, a random owner per query.
func BenchmarkQueryIndexed(b *testing.B) {
	dir, n := buildBenchStore(b)
	owners := n / benchPerOwner
	b.Run("query", func(b *testing.B) {
		s, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			owner := fmt.Sprintf("o%05d", rng.IntN(owners))
			t := time.Now()
			res, err := Run(s, query.Query{Table: "t", Where: "owner == '" + owner + "'", Limit: benchPerOwner, Explain: true}, query.Env{NowMs: t0})
			lat = append(lat, time.Since(t))
			if err != nil || len(res.Records) != benchPerOwner || res.Plan.Index == nil {
				b.Fatalf("query: %v, %d records, plan %+v", err, len(res.Records), res.Plan)
			}
		}
		b.StopTimer()
		querybench.Percentiles(b, lat)
		b.ReportMetric(float64(n), "records")
	})
	b.Run("raw-pebble", func(b *testing.B) {
		db := openRawDB(b, dir)
		defer db.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			o := rng.IntN(owners)
			t := time.Now()
			got := rawRange(b, db, fmt.Sprintf("%07d", o*benchPerOwner), fmt.Sprintf("%07d", (o+1)*benchPerOwner), true)
			lat = append(lat, time.Since(t))
			if got != benchPerOwner {
				b.Fatalf("raw: %d records", got)
			}
		}
		b.StopTimer()
		querybench.Percentiles(b, lat)
	})
}

// BenchmarkQueryScan: the same query on a field no index covers (team ==
// X: a scan of every record), records examined per second; against raw
// Pebble iterating over every record and decoding it.
func BenchmarkQueryScan(b *testing.B) {
	dir, n := buildBenchStore(b)
	owners := n / benchPerOwner
	b.Run("query", func(b *testing.B) {
		s, err := store.Open(store.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		rng := rand.New(rand.NewPCG(5, 6))
		examined := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			team := fmt.Sprintf("o%05d", rng.IntN(owners))
			res, err := Run(s, query.Query{Table: "t", Where: "team == '" + team + "'", Limit: benchPerOwner, Explain: true}, query.Env{NowMs: t0})
			if err != nil || len(res.Records) != benchPerOwner || res.Plan.Index != nil {
				b.Fatalf("query: %v, %d records, plan %+v", err, len(res.Records), res.Plan)
			}
			examined += res.Plan.Examined
		}
		b.ReportMetric(float64(examined)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(n), "records")
	})
	b.Run("raw-pebble", func(b *testing.B) {
		db := openRawDB(b, dir)
		defer db.Close()
		read := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			read += rawRange(b, db, "", "\xff", true)
		}
		b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkWriteIndexed: durable local writes of a 20-field record (3
// fields changed each time) to a store with 3 indexes on its table,
// against the same writes to a store with none; and the same without
// fsync (NoSync), where the indexes' share of the CPU shows.
func BenchmarkWriteIndexed(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, nidx := range []int{3, 0} {
			name := fmt.Sprintf("sync=%v/indexes=%d", sync, nidx)
			b.Run(name, func(b *testing.B) {
				dir := filepath.Join(b.TempDir(), "db")
				s, err := store.Open(store.Options{Dir: dir, NoSync: true}) // the setup
				if err != nil {
					b.Fatal(err)
				}
				for i, f := range []string{"owner", "status", "prio"}[:nidx] {
					if err := s.DeclareIndex(store.IndexDef{Name: fmt.Sprint("ix", i), Table: "t", Fields: []string{f, "f05"}}); err != nil {
						b.Fatal(err)
					}
				}
				c := hlc.NewClock(nil, time.Minute)
				rng := rand.New(rand.NewPCG(7, 8))
				for i := 0; i < 1000; i++ { // the records exist
					if _, err := s.Write(c, "t", strconv.Itoa(i), querybench.Fields(i, rng), false); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.WaitIndexes(); err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				if s, err = store.Open(store.Options{Dir: dir, NoSync: !sync}); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					fs := []crdt.FieldValue{
						{Name: "owner", Value: crdt.MustValue(fmt.Sprintf("o%05d", rng.IntN(1000)))},
						{Name: "status", Value: crdt.MustValue([]string{"open", "done"}[i%2])},
						{Name: "prio", Value: crdt.MustValue(int64(i % 10))},
					}
					t := time.Now()
					if _, err := s.Write(c, "t", strconv.Itoa(i%1000), fs, false); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t))
				}
				b.StopTimer()
				querybench.Percentiles(b, lat)
			})
		}
	}
}
