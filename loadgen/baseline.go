package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/store"
)

// The baselines: what the machine does without replicad, measured in the
// same run, on the same disk (a directory beside the agents' data) or
// the same loopback.

type nullLogger struct{}

func (nullLogger) Infof(string, ...any)  {}
func (nullLogger) Errorf(string, ...any) {}
func (nullLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// openRawPebble opens Pebble with the store's own settings (cache,
// memtable, format) in a fresh directory.
func openRawPebble(dir string) (*pebble.DB, error) {
	os.RemoveAll(dir)
	cache := pebble.NewCache(store.DefaultCacheSize)
	defer cache.Unref()
	return pebble.Open(dir, &pebble.Options{
		Cache: cache, MemTableSize: store.DefaultMemTableSize, FormatMajorVersion: store.PebbleFormat, Logger: nullLogger{},
	})
}

// SetsResult is the outcome of RawSyncedSets.
type SetsResult struct {
	Latencies []time.Duration // sorted
	PerSecond float64
}

// RawSyncedSets runs clients goroutines doing synced Sets of valSize-byte
// values over 1,000 keys in dir, n Sets in all (or until d has passed,
// when d > 0), and returns the sorted latencies and the rate.
func RawSyncedSets(dir string, clients, n int, d time.Duration, valSize int) (SetsResult, error) {
	db, err := openRawPebble(dir)
	if err != nil {
		return SetsResult{}, err
	}
	defer os.RemoveAll(dir)
	defer db.Close()
	val := make([]byte, valSize)
	var ctr atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 0, 32)
			var mine []time.Duration
			for {
				i := ctr.Add(1)
				if (n > 0 && i > int64(n)) || (d > 0 && time.Since(start) > d) {
					break
				}
				key = fmt.Appendf(key[:0], "rbench\x00%012d", i%1000)
				t := time.Now()
				if err := db.Set(key, val, pebble.Sync); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return SetsResult{Latencies: lat, PerSecond: float64(len(lat)) / el.Seconds()}, firstErr
}

// RawBatched applies, from writers goroutines at once, perWriter writes
// each as raw Pebble batches of batch writes, synced per batch. A write is
// what the store keeps for a one-field remote change: a change-log key
// (80-byte value) and a record key (120-byte value). It returns writes
// per second.
func RawBatched(dir string, writers, perWriter, batch int) (float64, error) {
	db, err := openRawPebble(dir)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	defer db.Close()
	logVal, recVal := make([]byte, 80), make([]byte, 120)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 0, 64)
			origin := uint64(w+1) * 0x9e3779b97f4a7c15
			bt := db.NewBatch()
			for i := range perWriter {
				key = append(key[:0], 'l')
				key = binary.BigEndian.AppendUint64(key, origin)
				key = binary.BigEndian.AppendUint64(key, uint64(i+1))
				bt.Set(key, logVal, nil)
				key = fmt.Appendf(key[:0], "rd%04d\x00wo-%07d", w, i%1000)
				bt.Set(key, recVal, nil)
				if (i+1)%batch == 0 || i == perWriter-1 {
					if err := db.Apply(bt, pebble.Sync); err != nil {
						errs <- err
						return
					}
					bt.Close()
					bt = db.NewBatch()
				}
			}
			bt.Close()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(writers*perWriter) / el.Seconds(), nil
}

// LoopbackThroughput moves n bytes (at least 64 MiB, for a stable figure)
// over one loopback TCP connection, written by one goroutine and read by
// another, and returns bytes per second.
func LoopbackThroughput(n int64) (float64, error) {
	n = max(n, 64<<20)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for left := n; left > 0; {
			k, err := c.Write(buf[:min(left, int64(len(buf)))])
			if err != nil {
				return
			}
			left -= int64(k)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	got, err := io.Copy(io.Discard, c)
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("loopback moved %d of %d bytes", got, n)
	}
	return float64(n) / el.Seconds(), nil
}

// httpAlone starts the HTTP-alone server: on loopback, it decodes each
// request body as JSON (an API write's {"fields": ...}) and answers a
// record-sized JSON body, doing nothing else. It returns the server's
// address and a function that stops it.
func httpAlone() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	answer := []byte(`{"table":"bench","id":"r1","fields":{"status":"a value of some thirty bytes 00"},"conflicts":{},"deleted":false}` + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Fields) == 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }, nil
}

// HTTPAloneLatency measures what HTTP alone costs one client: n PUTs of
// the write scenario's bodies, one at a time through the same lean
// client, to the HTTP-alone server (see httpAlone). It returns each
// request's latency, sorted: the HTTP part of an API write's latency on
// this machine, whatever its storage.
func HTTPAloneLatency(ctx context.Context, n int) ([]time.Duration, error) {
	addr, stop, err := httpAlone()
	if err != nil {
		return nil, err
	}
	defer stop()
	api := newAPIClient(addr, 1)
	defer api.close()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if err := api.put(ctx, "bench", "r"+strconv.Itoa(i%1000), putBodies[i%len(putBodies)]); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat, nil
}

// HTTPCeiling measures what HTTP alone allows on this machine: clients
// goroutines send the write scenario's PUT bodies through the same lean
// client to the HTTP-alone server (see httpAlone), for d. It returns
// requests per second: the ceiling of any API write path here, whatever
// its storage.
func HTTPCeiling(ctx context.Context, clients int, d time.Duration) (float64, error) {
	addr, stop, err := httpAlone()
	if err != nil {
		return 0, err
	}
	defer stop()
	api := newAPIClient(addr, clients)
	defer api.close()
	var n atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; time.Since(start) < d; i++ {
				if err := api.put(ctx, "bench", "r"+strconv.Itoa(i%1000), putBodies[i%len(putBodies)]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / el.Seconds(), nil
}
