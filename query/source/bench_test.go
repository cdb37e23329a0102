package source

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/store"
)

// The query benchmarks run on one store of REPLICAD_QUERY_BENCH_RECORDS
// records (default 1,000,000; make bench's quick mode sets 100,000) of 20
// fields, built once (remote batches of 1,000 records, then the build of
// the index) in REPLICAD_QUERY_BENCH_DIR, where later runs find it (make
// bench shares it between its two query benchmarks and removes it), or
// else in a temporary directory removed at the end.
// Record i has id %07d, owner = team = "o%05d" of i/50 (50 records per
// owner, their ids contiguous), and 18 more fields.
const benchPerOwner = 50

func benchRecords() int {
	if s := os.Getenv("REPLICAD_QUERY_BENCH_RECORDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= benchPerOwner {
			return n
		}
	}
	return 1_000_000
}

var benchStore struct {
	once sync.Once
	dir  string
	n    int
	err  error
	temp bool // remove dir at the end
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore.temp {
		os.RemoveAll(benchStore.dir)
	}
	os.Exit(code)
}

func benchFields(i int, rng *rand.Rand) []crdt.FieldValue {
	owner := fmt.Sprintf("o%05d", i/benchPerOwner)
	fs := []crdt.FieldValue{
		{Name: "owner", Value: crdt.MustValue(owner)},
		{Name: "team", Value: crdt.MustValue(owner)},
		{Name: "status", Value: crdt.MustValue([]string{"open", "assigned", "done", "closed", "parked"}[i%5])},
		{Name: "prio", Value: crdt.MustValue(int64(i % 10))},
	}
	for f := 4; f < 20; f++ {
		fs = append(fs, crdt.FieldValue{Name: fmt.Sprintf("f%02d", f), Value: crdt.MustValue(fmt.Sprintf("value-%08x", rng.Uint32()))})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name }) // a write's fields are sorted
	return fs
}

// buildBenchStore builds the store once: records by remote batches of
// 1,000 (NoSync), the index "by_owner" on owner, built.
func buildBenchStore(b *testing.B) (string, int) {
	benchStore.once.Do(func() {
		n := benchRecords()
		dir := os.Getenv("REPLICAD_QUERY_BENCH_DIR")
		done := filepath.Join(dir, fmt.Sprintf("built-%d", n))
		if dir != "" {
			benchStore.dir, benchStore.n = dir, n
			if _, err := os.Stat(done); err == nil {
				return // built by an earlier run
			}
			if err := os.RemoveAll(dir); err != nil {
				benchStore.err = err
				return
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				benchStore.err = err
				return
			}
		} else {
			var err error
			if dir, err = os.MkdirTemp("", "replicad-querybench-"); err != nil {
				benchStore.err = err
				return
			}
			benchStore.dir, benchStore.n, benchStore.temp = dir, n, true
			done = ""
		}
		start := time.Now()
		s, err := store.Open(store.Options{Dir: filepath.Join(dir, "db"), NoSync: true})
		if err != nil {
			benchStore.err = err
			return
		}
		defer func() {
			if benchStore.err != nil {
				s.Close()
			}
		}()
		clock := hlc.NewClock(func() int64 { return t0 + 100_000_000 }, time.Minute)
		rng := rand.New(rand.NewPCG(1, 2))
		const origin = hlc.NodeID(0xbe)
		for i := 0; i < n; i += 1000 {
			var ws []*crdt.Write
			for j := i; j < min(i+1000, n); j++ {
				ws = append(ws, &crdt.Write{Table: "t", ID: fmt.Sprintf("%07d", j), Origin: origin, Seq: uint64(j + 1),
					TS: hlc.New(t0+int64(j), 0), Fields: benchFields(j, rng)})
			}
			if _, err := s.ApplyRemote(clock, ws, nil); err != nil {
				benchStore.err = err
				return
			}
		}
		if err := s.DeclareIndex(store.IndexDef{Name: "by_owner", Table: "t", Fields: []string{"owner"}}); err != nil {
			benchStore.err = err
			return
		}
		if err := s.WaitIndexes(); err != nil {
			benchStore.err = err
			return
		}
		if err := s.Close(); err != nil {
			benchStore.err = err
			return
		}
		if done != "" {
			benchStore.err = os.WriteFile(done, nil, 0o644)
		}
		fmt.Fprintf(os.Stderr, "query bench: %d records of 20 fields built in %s\n", n, time.Since(start).Round(time.Second))
	})
	if benchStore.err != nil {
		b.Fatal(benchStore.err)
	}
	return filepath.Join(benchStore.dir, "db"), benchStore.n
}

func latencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
}

// rawRange reads the record keys of ids [lo, hi) of table t with raw
// Pebble and decodes each record: the least a query for them must do.
func rawRange(b *testing.B, db *pebble.DB, lo, hi string, decode bool) int {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("rt\x00" + lo), UpperBound: []byte("rt\x00" + hi)})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if decode {
			var rec crdt.Record
			if err := rec.UnmarshalBinary(it.Value()); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

func openRawDB(b *testing.B, dir string) *pebble.DB {
	cache := pebble.NewCache(store.DefaultCacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{Cache: cache, FormatMajorVersion: store.PebbleFormat, ReadOnly: true, Logger: quietLogger{}})
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
		latencies(b, lat)
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
		latencies(b, lat)
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
					if _, err := s.Write(c, "t", strconv.Itoa(i), benchFields(i, rng), false); err != nil {
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
				latencies(b, lat)
			})
		}
	}
}

// quietLogger drops Pebble's informational messages (the raw baseline's
// open); errors still fail the benchmark through the calls that meet them.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
