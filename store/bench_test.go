package store

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

var benchBig = flag.Bool("store.big", false, "run the 1,000,000-write streaming setup in BenchmarkStream")

func openRaw(b *testing.B, dir string) *pebble.DB {
	cache := pebble.NewCache(DefaultCacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		Cache: cache, MemTableSize: DefaultMemTableSize, FormatMajorVersion: PebbleFormat,
		Logger: hclogAdapter{hclog.NewNullLogger()},
	})
	if err != nil {
		b.Fatal(err)
	}
	return db
}

func percentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLocalWrite: one writer, durable one-field writes, against a raw
// synced Pebble Set of the same size (the store's whole batch size); and
// the same writes to a store encrypted at rest (Options.EncryptionKey).
func BenchmarkLocalWrite(b *testing.B) {
	var batchSize atomic.Int64
	run := func(b *testing.B, key []byte, size *atomic.Int64) {
		s := mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "db"), EncryptionKey: key})
		defer s.Close()
		s.testHookBatch = func(r []byte) { size.Store(int64(len(r))) }
		c := hlc.NewClock(nil, time.Minute)
		val := crdt.MustValue("a value of some thirty bytes..")
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := time.Now()
			if _, err := s.Write(c, "bench", strconv.Itoa(i%1000), []crdt.FieldValue{{Name: "f", Value: val}}, false); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		b.StopTimer()
		percentiles(b, lat)
		b.ReportMetric(float64(size.Load()), "batch-bytes")
	}
	b.Run("store", func(b *testing.B) { run(b, nil, &batchSize) })
	b.Run("store-encrypted", func(b *testing.B) { run(b, benchKey, new(atomic.Int64)) })
	b.Run("raw-pebble", func(b *testing.B) {
		db := openRaw(b, filepath.Join(b.TempDir(), "raw"))
		defer db.Close()
		n := int(batchSize.Load())
		if n < 40 {
			n = 300
		}
		val := make([]byte, n-20)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := time.Now()
			if err := db.Set([]byte(fmt.Sprintf("rbench\x00%012d", i%1000)), val, pebble.Sync); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		b.StopTimer()
		percentiles(b, lat)
	})
}

func parallel16(b *testing.B, op func(i int) error) {
	b.SetParallelism((16 + runtimeProcs() - 1) / runtimeProcs())
	var ctr atomic.Int64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(ctr.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkGroupCommit16: 16 concurrent durable writers, against raw
// Pebble synced Sets with the same concurrency.
func BenchmarkGroupCommit16(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "db")})
		defer s.Close()
		c := hlc.NewClock(nil, time.Minute)
		val := crdt.MustValue("a value of some thirty bytes..")
		b.ResetTimer()
		parallel16(b, func(i int) error {
			_, err := s.Write(c, "bench", strconv.Itoa(i%1000), []crdt.FieldValue{{Name: "f", Value: val}}, false)
			return err
		})
	})
	b.Run("raw-pebble", func(b *testing.B) {
		db := openRaw(b, filepath.Join(b.TempDir(), "raw"))
		defer db.Close()
		val := make([]byte, 280)
		b.ResetTimer()
		parallel16(b, func(i int) error {
			return db.Set([]byte(fmt.Sprintf("rbench\x00%012d", i%1000)), val, pebble.Sync)
		})
	})
}

// remoteGen makes valid single-field remote writes of one origin over
// nrec records.
type remoteGen struct {
	origin hlc.NodeID
	seq    uint64
	nrec   int
	last   map[int]uint64
	val    crdt.Value
}

func newRemoteGen(origin hlc.NodeID, nrec int) *remoteGen {
	return &remoteGen{origin: origin, nrec: nrec, last: map[int]uint64{}, val: crdt.MustValue("a value of some thirty bytes..")}
}

func (g *remoteGen) next(n int) []*crdt.Write {
	ws := make([]*crdt.Write, n)
	for i := range ws {
		g.seq++
		r := int(g.seq) % g.nrec
		var ctx crdt.VV
		if p := g.last[r]; p > 0 {
			ctx = crdt.VV{{Node: g.origin, Seq: p}}
		}
		g.last[r] = g.seq
		ws[i] = &crdt.Write{
			Table: "bench", ID: "rec" + strconv.Itoa(r), Origin: g.origin, Seq: g.seq,
			TS: hlc.New(t0, 0) + hlc.Timestamp(g.seq), Ctx: ctx,
			Fields: []crdt.FieldValue{{Name: "f", Value: g.val}},
		}
	}
	return ws
}

var capturedBatches [][]byte

// benchKey is the encryption key of the store-encrypted sub-benchmarks.
var benchKey = bytes.Repeat([]byte{0x5a}, KeySize)

// BenchmarkApplyRemote1000: batches of 1,000 single-field remote writes,
// synced per batch, against raw Pebble applying the very same batch bytes
// (same keys and values), synced.
func BenchmarkApplyRemote1000(b *testing.B) {
	run := func(b *testing.B, key []byte) {
		s := mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "db"), EncryptionKey: key})
		defer s.Close()
		if key == nil {
			s.testHookBatch = func(r []byte) {
				if len(capturedBatches) < 64 {
					capturedBatches = append(capturedBatches, append([]byte(nil), r...))
				}
			}
		}
		c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
		g := newRemoteGen(99, 20_000)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ws := g.next(1000)
			b.StartTimer()
			res, err := s.ApplyRemote(c, ws, nil)
			if err != nil || res.Applied != 1000 {
				b.Fatal(err, res.Applied)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "fieldchanges/s")
	}
	b.Run("store", func(b *testing.B) { run(b, nil) })
	b.Run("store-encrypted", func(b *testing.B) { run(b, benchKey) })
	b.Run("raw-pebble", func(b *testing.B) {
		if len(capturedBatches) == 0 {
			b.Skip("run with the store sub-benchmark")
		}
		db := openRaw(b, filepath.Join(b.TempDir(), "raw"))
		defer db.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bt := db.NewBatch()
			if err := bt.SetRepr(append([]byte(nil), capturedBatches[i%len(capturedBatches)]...)); err != nil {
				b.Fatal(err)
			}
			if err := db.Apply(bt, pebble.Sync); err != nil {
				b.Fatal(err)
			}
			bt.Close()
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "fieldchanges/s")
	})
}

// BenchmarkStream: streaming the last 1,000 writes of an origin whose log
// holds 10k and 1M writes (the latter with -store.big or by default under
// -bench; setup outside the timer). ns/change must not grow with the log.
func BenchmarkStream(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("log=%d", n), func(b *testing.B) {
			if n > 100_000 && !*benchBig && testing.Short() {
				b.Skip("1M setup skipped in -short")
			}
			s := mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "db"), NoSync: true})
			defer s.Close()
			c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
			// Two origins interleaved, so the missing writes are not at the
			// end of the key space.
			g1, g2 := newRemoteGen(5, 50_000), newRemoteGen(6, 50_000)
			for done := 0; done < n; done += 2000 {
				if _, err := s.ApplyRemote(c, append(g1.next(1000), g2.next(1000)...), nil); err != nil {
					b.Fatal(err)
				}
			}
			s.db.Flush()
			after := g1.seq - 1000
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cnt := 0
				if err := s.Stream(5, after, func(*crdt.Write) error { cnt++; return nil }); err != nil || cnt != 1000 {
					b.Fatal(err, cnt)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/change")
		})
	}
}

const memDirEnv = "REPLICAD_STORE_MEM_DIR"

// TestMemChild is BenchmarkMemory1M's child: it applies 1,000,000 remote
// writes in synced batches of 1,000 and prints its peak RSS.
func TestMemChild(t *testing.T) {
	dir := os.Getenv(memDirEnv)
	if dir == "" {
		t.Skip("helper process for BenchmarkMemory1M")
	}
	s := mustOpen(t, Options{Dir: dir})
	c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
	g := newRemoteGen(7, 100_000)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		if _, err := s.ApplyRemote(c, g.next(1000), nil); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	s.Close()
	fmt.Printf("HWM %d SECONDS %f\n", vmHWM(), el.Seconds())
}

func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return -1
}

// BenchmarkMemory1M applies 1,000,000 writes in a child process and
// reports its peak resident memory (VmHWM). Run with -benchtime=1x.
func BenchmarkMemory1M(b *testing.B) {
	var once sync.Once
	for i := 0; i < b.N; i++ {
		once.Do(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemChild$", "-test.count=1", "-test.bench=^$")
			cmd.Env = append(os.Environ(), memDirEnv+"="+filepath.Join(b.TempDir(), "db"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("child: %v\n%s", err, out)
			}
			var hwm int64
			var secs float64
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "HWM ") {
					fmt.Sscanf(l, "HWM %d SECONDS %f", &hwm, &secs)
				}
			}
			if hwm <= 0 {
				b.Fatalf("no HWM in child output:\n%s", out)
			}
			b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
			b.ReportMetric(1e6/secs, "writes/s")
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
