package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/store"
)

// The HTTP query benchmark runs on the store of query/source's query
// benchmarks (same records: REPLICAD_QUERY_BENCH_RECORDS, default
// 1,000,000, of 20 fields; owner "o%05d" of i/50; the index by_owner),
// found in REPLICAD_QUERY_BENCH_DIR when an earlier run built it there,
// else built here (in that directory, or a temporary one).
const benchPerOwner = 50

const benchT0 = 1_700_000_000_000

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
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
	return fs
}

// buildBenchStore returns the store's directory and record count,
// building it (as query/source does) unless REPLICAD_QUERY_BENCH_DIR
// holds it.
func buildBenchStore(b *testing.B) (string, int) {
	benchStore.once.Do(func() {
		n := benchRecords()
		dir := os.Getenv("REPLICAD_QUERY_BENCH_DIR")
		done := ""
		if dir != "" {
			done = filepath.Join(dir, fmt.Sprintf("built-%d", n))
			if _, err := os.Stat(done); err == nil {
				benchStore.dir, benchStore.n = dir, n
				return
			}
			if err := os.RemoveAll(dir); err != nil {
				benchStore.err = err
				return
			}
		} else {
			var err error
			if dir, err = os.MkdirTemp("", "replicad-httpquerybench-"); err != nil {
				benchStore.err = err
				return
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
		}
		benchStore.dir, benchStore.n = dir, n
		start := time.Now()
		s, err := store.Open(store.Options{Dir: filepath.Join(dir, "db"), NoSync: true})
		if err != nil {
			benchStore.err = err
			return
		}
		defer func() {
			if err := s.Close(); err != nil && benchStore.err == nil {
				benchStore.err = err
			}
		}()
		clock := hlc.NewClock(func() int64 { return benchT0 + 100_000_000 }, time.Minute)
		rng := rand.New(rand.NewPCG(1, 2))
		const origin = hlc.NodeID(0xbe)
		for i := 0; i < n; i += 1000 {
			var ws []*crdt.Write
			for j := i; j < min(i+1000, n); j++ {
				ws = append(ws, &crdt.Write{Table: "t", ID: fmt.Sprintf("%07d", j), Origin: origin, Seq: uint64(j + 1),
					TS: hlc.New(benchT0+int64(j), 0), Fields: benchFields(j, rng)})
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
		if done != "" {
			benchStore.err = os.WriteFile(done, nil, 0o644)
		}
		fmt.Fprintf(os.Stderr, "http query bench: %d records of 20 fields built in %s\n", n, time.Since(start).Round(time.Second))
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

// benchReplica opens the bench store as a replica (no sync) and serves
// its query routes on a loopback server.
func benchReplica(b *testing.B, dir string) (*replica.Replica, *httptest.Server) {
	// A hub declaring the index, which its replica then keeps (a replica
	// drops the indexes no hub declared).
	r, n, err := openReplica(replica.Config{DataDir: dir, Role: replica.RoleHub,
		Indexes: []replica.Index{{Name: "by_owner", Table: "t", Fields: []string{"owner"}}}})
	if err != nil {
		b.Fatal(err)
	}
	core := &replicaCore{r: r, n: n}
	qs := NewQueries(core, 2000)
	rt := NewRouter(nil)
	rt.Handle("GET /v1/tables/{table}/records", qs.List(Modes{Records: Records{Core: core}}))
	srv := httptest.NewServer(rt.Handler(1 << 20))
	b.Cleanup(func() {
		qs.Close()
		srv.Close()
		r.Close()
	})
	return r, srv
}

// BenchmarkQueryHTTP: the query of query/source's BenchmarkQueryIndexed
// (owner == X on the index by_owner, 50 records) through GET
// /v1/tables/t/records on a loopback server (the real handler, a
// keep-alive client, the records rendered as the API renders them);
// beside it in the same run the same query embedded (replica.Query) and
// raw Pebble iterating over the 50 records' keys and decoding them.
// Warm cache, a random owner per query.
func BenchmarkQueryHTTP(b *testing.B) {
	dir, n := buildBenchStore(b)
	owners := n / benchPerOwner
	b.Run("http", func(b *testing.B) {
		_, srv := benchReplica(b, dir)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			owner := fmt.Sprintf("o%05d", rng.IntN(owners))
			u := srv.URL + "/v1/tables/t/records?" + url.Values{"where": {"owner == '" + owner + "'"}, "limit": {"50"}, "explain": {"true"}}.Encode()
			t := time.Now()
			resp, err := client.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			var p api.Page
			err = json.NewDecoder(resp.Body).Decode(&p)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t))
			if err != nil || resp.StatusCode != 200 || len(p.Records) != benchPerOwner || p.Plan == nil || p.Plan.Index == nil {
				b.Fatalf("GET: %d %v, %d records, plan %+v", resp.StatusCode, err, len(p.Records), p.Plan)
			}
		}
		b.StopTimer()
		latencies(b, lat)
		b.ReportMetric(float64(n), "records")
	})
	b.Run("embedded", func(b *testing.B) {
		r, _ := benchReplica(b, dir)
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			owner := fmt.Sprintf("o%05d", rng.IntN(owners))
			t := time.Now()
			res, err := r.Query(ctx, replica.Query{Table: "t", Where: "owner == '" + owner + "'", Limit: benchPerOwner, Explain: true})
			lat = append(lat, time.Since(t))
			if err != nil || len(res.Records) != benchPerOwner || res.Plan.Index == "" {
				b.Fatalf("query: %v", err)
			}
		}
		b.StopTimer()
		latencies(b, lat)
	})
	b.Run("raw-pebble", func(b *testing.B) {
		cache := pebble.NewCache(store.DefaultCacheSize)
		defer cache.Unref()
		db, err := pebble.Open(dir, &pebble.Options{Cache: cache, FormatMajorVersion: store.PebbleFormat, ReadOnly: true, Logger: quietLogger{}})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			o := rng.IntN(owners)
			t := time.Now()
			it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(fmt.Sprintf("rt\x00%07d", o*benchPerOwner)), UpperBound: []byte(fmt.Sprintf("rt\x00%07d", (o+1)*benchPerOwner))})
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for it.First(); it.Valid(); it.Next() {
				var rec crdt.Record
				if err := rec.UnmarshalBinary(it.Value()); err != nil {
					b.Fatal(err)
				}
				got++
			}
			it.Close()
			lat = append(lat, time.Since(t))
			if got != benchPerOwner {
				b.Fatalf("raw: %d records", got)
			}
		}
		b.StopTimer()
		latencies(b, lat)
	})
}

// quietLogger drops Pebble's informational messages.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// BenchmarkWatchSSE1000: 1,000 event streams (watch=true, text/event-
// stream) of one live query on a loopback server; each iteration is one
// write that enters the result, timed until every stream has its "add".
// events-lost counts the adds a stream missed (or an overflow), 0
// expected.
func BenchmarkWatchSSE1000(b *testing.B) {
	const subs = 1000
	dir := b.TempDir()
	r, n, err := openReplica(replica.Config{DataDir: dir, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	core := &replicaCore{r: r, n: n}
	qs := NewQueries(core, subs)
	rt := NewRouter(nil)
	rt.Handle("GET /v1/tables/{table}/records", qs.List(Modes{Records: Records{Core: core}}))
	srv := httptest.NewServer(rt.Handler(1 << 20))
	defer srv.Close()
	defer qs.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: subs}}
	u := srv.URL + "/v1/tables/jobs/records?watch=true&limit=10000&where=" + url.QueryEscape("status == 'open'")

	var got atomic.Int64      // adds received, all streams
	var overflow atomic.Int64 // overflow events
	arrived := make(chan struct{}, subs*4)
	var ready, wg sync.WaitGroup
	ready.Add(subs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < subs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := client.Do(req)
			if err != nil {
				ready.Done()
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			first := true
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "event: result" && first:
					first = false
					ready.Done()
				case line == "event: add":
					got.Add(1)
					arrived <- struct{}{}
				case line == "event: overflow":
					overflow.Add(1)
				}
			}
			if first {
				ready.Done()
			}
		}()
	}
	ready.Wait()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if err := r.Put(context.Background(), "jobs", fmt.Sprintf("j%06d", i), map[string]any{"status": "open"}); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
		for k := 0; k < subs; k++ {
			select {
			case <-arrived:
			case <-timeout:
				b.Fatalf("write %d: %d of %d streams had it after 30s", i, k, subs)
			}
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	lost := int64(b.N)*subs - got.Load() + overflow.Load()
	cancel()
	wg.Wait()
	latencies(b, lat)
	b.ReportMetric(float64(lost), "events-lost")
	b.ReportMetric(subs, "streams")
	if lost != 0 {
		b.Errorf("%d events lost", lost)
	}
}
