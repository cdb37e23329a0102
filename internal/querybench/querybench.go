// Package querybench is the store the query benchmarks share (those of
// query/source and internal/httpapi): REPLICAD_QUERY_BENCH_RECORDS
// records (default 1,000,000; make bench's quick mode sets 100,000) of
// 20 fields in table "t", record i with id %07d, owner = team =
// "o%05d" of i/PerOwner (PerOwner records per owner, their ids
// contiguous) and 18 more fields, and the index "by_owner" on owner,
// built. It is built once per process (remote batches of 1,000, NoSync,
// then the index) in REPLICAD_QUERY_BENCH_DIR, where later runs find it
// (make bench shares it between its query benchmarks), or else in a
// temporary directory the caller removes (Shared.Cleanup). Also: the raw
// Pebble baseline over the same keys and the latency percentiles the
// benchmarks report. Used by benchmarks only.
package querybench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// PerOwner is how many records share an owner (and a team).
const PerOwner = 50

// T0 is the wall clock (Unix ms) of the first record's stamp.
const T0 = 1_700_000_000_000

// Records is the store's record count: REPLICAD_QUERY_BENCH_RECORDS, at
// least PerOwner, default 1,000,000.
func Records() int {
	if s := os.Getenv("REPLICAD_QUERY_BENCH_RECORDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= PerOwner {
			return n
		}
	}
	return 1_000_000
}

// Fields returns record i's 20 fields, sorted by name (as a write's
// are); rng draws the 16 filler values.
func Fields(i int, rng *rand.Rand) []crdt.FieldValue {
	owner := fmt.Sprintf("o%05d", i/PerOwner)
	fs := []crdt.FieldValue{
		{Name: "owner", Value: crdt.MustValue(owner)},
		{Name: "team", Value: crdt.MustValue(owner)},
		{Name: "status", Value: crdt.MustValue([]string{"open", "assigned", "done", "closed", "parked"}[i%5])},
		{Name: "prio", Value: crdt.MustValue(int64(i % 10))},
	}
	for f := 4; f < 20; f++ {
		fs = append(fs, crdt.FieldValue{Name: fmt.Sprintf("f%02d", f), Value: crdt.MustValue(fmt.Sprintf("value-%08x", rng.Uint32()))})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

var shared struct {
	once sync.Once
	dir  string
	n    int
	temp bool
	err  error
}

// Store returns the directory of the shared store (closed) and its
// record count, building it on the first call; name tells which
// benchmark built it in the line printed to stderr.
func Store(name string) (dir string, n int, err error) {
	shared.once.Do(func() { shared.dir, shared.n, shared.temp, shared.err = build(name) })
	if shared.err != nil {
		return "", 0, shared.err
	}
	return filepath.Join(shared.dir, "db"), shared.n, nil
}

// Cleanup removes the store if it was built in a temporary directory
// (call it once the benchmarks are over, e.g. from TestMain).
func Cleanup() {
	if shared.temp {
		os.RemoveAll(shared.dir)
	}
}

func build(name string) (dir string, n int, temp bool, err error) {
	n = Records()
	dir = os.Getenv("REPLICAD_QUERY_BENCH_DIR")
	done := ""
	if dir != "" {
		done = filepath.Join(dir, fmt.Sprintf("built-%d", n))
		if _, err := os.Stat(done); err == nil {
			return dir, n, false, nil // built by an earlier run
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", 0, false, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", 0, false, err
		}
	} else {
		if dir, err = os.MkdirTemp("", "replicad-querybench-"); err != nil {
			return "", 0, false, err
		}
		temp = true
	}
	start := time.Now()
	s, err := store.Open(store.Options{Dir: filepath.Join(dir, "db"), NoSync: true})
	if err != nil {
		return "", 0, false, err
	}
	if err := fill(s, n); err != nil {
		s.Close()
		return "", 0, false, err
	}
	if err := s.Close(); err != nil {
		return "", 0, false, err
	}
	if done != "" {
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return "", 0, false, err
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %d records of 20 fields built in %s\n", name, n, time.Since(start).Round(time.Second))
	return dir, n, temp, nil
}

// fill writes the n records by remote batches of 1,000, then builds the
// index by_owner.
func fill(s *store.Store, n int) error {
	clock := hlc.NewClock(func() int64 { return T0 + 100_000_000 }, time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	const origin = hlc.NodeID(0xbe)
	for i := 0; i < n; i += 1000 {
		var ws []*crdt.Write
		for j := i; j < min(i+1000, n); j++ {
			ws = append(ws, &crdt.Write{Table: "t", ID: fmt.Sprintf("%07d", j), Origin: origin, Seq: uint64(j + 1),
				TS: hlc.New(T0+int64(j), 0), Fields: Fields(j, rng)})
		}
		if _, err := s.ApplyRemote(clock, ws, nil); err != nil {
			return err
		}
	}
	if err := s.DeclareIndex(store.IndexDef{Name: "by_owner", Table: "t", Fields: []string{"owner"}}); err != nil {
		return err
	}
	return s.WaitIndexes()
}

// OpenRaw opens the store's Pebble database read-only, for the raw
// baseline (with the store's cache size and format).
func OpenRaw(dir string) (*pebble.DB, error) {
	cache := pebble.NewCache(store.DefaultCacheSize)
	defer cache.Unref()
	return pebble.Open(dir, &pebble.Options{Cache: cache, FormatMajorVersion: store.PebbleFormat, ReadOnly: true, Logger: quietLogger{}})
}

// RawRange reads the record keys of ids [lo, hi) of table t with raw
// Pebble, decoding each record if decode: the least a query for them
// must do. It returns how many it read.
func RawRange(db *pebble.DB, lo, hi string, decode bool) (int, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("rt\x00" + lo), UpperBound: []byte("rt\x00" + hi)})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if decode {
			var rec crdt.Record
			if err := rec.UnmarshalBinary(it.Value()); err != nil {
				it.Close()
				return n, err
			}
		}
		n++
	}
	return n, it.Close()
}

// OwnerRange is the id range [lo, hi) of owner o's records.
func OwnerRange(o int) (lo, hi string) {
	return fmt.Sprintf("%07d", o*PerOwner), fmt.Sprintf("%07d", (o+1)*PerOwner)
}

// Reporter is what Percentiles reports to (a *testing.B).
type Reporter interface{ ReportMetric(n float64, unit string) }

// Percentiles reports the p50 and p99 of lat (sorted in place) in µs.
func Percentiles(b Reporter, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
}

// quietLogger drops Pebble's informational messages (the raw baseline's
// read-only open).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
