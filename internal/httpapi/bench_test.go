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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/querybench"
	"github.com/replicad/replicad/replica"
)

// The HTTP query benchmark runs on the store of package querybench, the
// one query/source's benchmarks run on (found in REPLICAD_QUERY_BENCH_DIR
// when an earlier run built it there, else built here).
const benchPerOwner = querybench.PerOwner

func buildBenchStore(b *testing.B) (string, int) {
	dir, n, err := querybench.Store("http query bench")
	if err != nil {
		b.Fatal(err)
	}
	return dir, n
}

// TestMain removes the benchmarks' store when it was built in a
// temporary directory (after every run of -count).
func TestMain(m *testing.M) {
	code := m.Run()
	querybench.Cleanup()
	os.Exit(code)
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
		querybench.Percentiles(b, lat)
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
		querybench.Percentiles(b, lat)
	})
	b.Run("raw-pebble", func(b *testing.B) {
		db, err := querybench.OpenRaw(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			lo, hi := querybench.OwnerRange(rng.IntN(owners))
			t := time.Now()
			got, err := querybench.RawRange(db, lo, hi, true)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
			if got != benchPerOwner {
				b.Fatalf("raw: %d records", got)
			}
		}
		b.StopTimer()
		querybench.Percentiles(b, lat)
	})
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
	querybench.Percentiles(b, lat)
	b.ReportMetric(float64(lost), "events-lost")
	b.ReportMetric(subs, "streams")
	if lost != 0 {
		b.Errorf("%d events lost", lost)
	}
}
