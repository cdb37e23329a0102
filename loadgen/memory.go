package loadgen

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicad/replicad/store"
)

// HubMemoryOpts: a hub holding many records, with a fleet syncing steadily.
type HubMemoryOpts struct {
	Records int           // loaded before the steady run
	Devices int           // simulated devices
	Steady  time.Duration // length of the steady run
	Every   time.Duration // each device writes and syncs this often (jittered)
	Writes  int           // writes per device per cycle
	Sample  time.Duration // RSS sampling interval
}

// HubMemory measures a hub's resident memory with Records records and
// Devices devices: the hub is loaded, every device syncs once (warm-up),
// then for Steady each device writes Writes fields every Every and syncs;
// now and then a device goes offline for a while (it keeps writing) and
// syncs its backlog when back online; two API readers read random loaded
// records and one API writer writes on the hub meanwhile. The hub's RSS
// is sampled every Sample. Reported: RSS after loading, at the start and
// end of the steady run, its peak and slope, against the store's size on
// disk; its growth from the second quarter of the samples to the last
// (the means of each; the first quarter is left out: the caches are still
// filling after the load), which the "no growth" target judges, with the
// same growth of its parts beside it (Go heap, Go memory from the OS,
// Pebble's caches, the record cache).
func HubMemory(ctx context.Context, c *Config, o HubMemoryOpts) (*Result, error) {
	start := time.Now()
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.Sample <= 0 {
		o.Sample = 5 * time.Second
	}
	o.Writes = max(o.Writes, 1)
	hub, err := c.startOrUse(ctx, "memory-hub", c.HubAPI, c.HubSync, "--role", "hub")
	if err != nil {
		return nil, err
	}
	defer hub.Stop()
	res := &Result{Name: fmt.Sprintf("hub-memory/records=%d/devices=%d", o.Records, o.Devices), Params: map[string]any{
		"records": o.Records, "devices": o.Devices, "steady_s": o.Steady.Seconds(), "every_s": o.Every.Seconds(), "writes_per_cycle": o.Writes}}
	if err := load(ctx, c, hub, "bulk", o.Records, 2, res); err != nil {
		return nil, err
	}
	rssLoaded, err := hub.RSS(ctx)
	if err != nil {
		return nil, err
	}
	res.Add("rss-loaded", "MiB", mib(rssLoaded))

	// Warm-up: every device writes a little and syncs once.
	devs := make([]*SimDevice, o.Devices)
	for i := range devs {
		if devs[i], err = NewSimDevice(i, 100, c.cluster()); err != nil {
			return nil, err
		}
		defer devs[i].Close()
	}
	t0 := time.Now()
	if err := eachDevice(devs, func(d *SimDevice) error {
		if err := d.Write(o.Writes); err != nil {
			return err
		}
		_, err := d.Sync(ctx, hub.Sync)
		return err
	}); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	res.Add("warmup", "s", time.Since(t0).Seconds())
	c.logf("  %d devices synced once in %.1fs; steady run of %v starts", o.Devices, time.Since(t0).Seconds(), o.Steady)

	// The steady run.
	sctx, cancel := context.WithTimeout(ctx, o.Steady)
	defer cancel()
	var sessions, offlines, reads, apiWrites atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.Devices+4)
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			offlineUntil := time.Time{}
			// Spread the first cycle over the interval.
			wait := time.Duration(rng.Int64N(int64(o.Every)))
			for {
				select {
				case <-sctx.Done():
					return
				case <-time.After(wait):
				}
				wait = o.Every/2 + time.Duration(rng.Int64N(int64(o.Every)))
				if err := d.Write(o.Writes); err != nil {
					errc <- err
					return
				}
				if time.Now().Before(offlineUntil) {
					continue
				}
				if rng.IntN(20) == 0 { // goes offline for 3 to 9 cycles
					offlineUntil = time.Now().Add(time.Duration(3+rng.IntN(7)) * o.Every)
					offlines.Add(1)
					continue
				}
				if _, err := d.Sync(sctx, hub.Sync); err != nil {
					if sctx.Err() != nil {
						return
					}
					errc <- fmt.Errorf("device %d: %w", i, err)
					return
				}
				sessions.Add(1)
			}
		}()
	}
	api := newAPIClient(hub.API, 3)
	defer api.close()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for sctx.Err() == nil {
				var err error
				if r < 2 {
					err = api.get(sctx, "bulk", fmt.Sprintf("r%08d", rng.IntN(max(o.Records, 1))))
					reads.Add(1)
				} else {
					err = api.put(sctx, "hubnotes", "n"+strconv.Itoa(rng.IntN(1000)), putBodies[rng.IntN(len(putBodies))])
					apiWrites.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
				if err != nil && sctx.Err() == nil {
					errc <- fmt.Errorf("api: %w", err)
					return
				}
				if r < 2 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	var xs, ys, heap, caches, recs, sys []float64
	// The breakdown of RSS: anonymous and file-backed memory (smaps, for
	// a hub started here), the Go runtime's memory from the OS less what
	// it released, C malloc's in use and free in its arenas and its
	// mmap'd allocations (Pebble's manually allocated block cache and
	// memtables live there with cgo; none without glibc).
	var anon, file, memtab, goHeld, cInUse, cFree, cMmap []float64
	steady0 := time.Now()
	tick := time.NewTicker(o.Sample)
sampling:
	for {
		select {
		case <-sctx.Done():
			break sampling
		case err := <-errc:
			cancel()
			wg.Wait()
			return nil, err
		case <-tick.C:
			rss, err := hub.RSS(ctx)
			var m map[string]float64
			if err == nil {
				m, err = hub.Metrics(ctx)
			}
			if err != nil {
				cancel()
				wg.Wait()
				return nil, err
			}
			xs = append(xs, time.Since(steady0).Minutes())
			ys = append(ys, mib(rss))
			heap = append(heap, m["go_memstats_heap_inuse_bytes"]/(1<<20))
			caches = append(caches, (m["replicad_store_block_cache_bytes"]+m["replicad_store_memtable_bytes"])/(1<<20))
			recs = append(recs, m["replicad_store_record_cache_bytes"]/(1<<20))
			sys = append(sys, m["go_memstats_sys_bytes"]/(1<<20))
			goHeld = append(goHeld, (m["go_memstats_sys_bytes"]-m["go_memstats_heap_released_bytes"])/(1<<20))
			cInUse = append(cInUse, m["replicad_c_malloc_inuse_bytes"]/(1<<20))
			cFree = append(cFree, m["replicad_c_malloc_free_bytes"]/(1<<20))
			cMmap = append(cMmap, m["replicad_c_malloc_mmap_bytes"]/(1<<20))
			if hub.Pid > 0 {
				parts, err := ReadRSSParts(hub.Pid, store.DefaultMemTableSize) // a hub's memtable size
				if err != nil {
					cancel()
					wg.Wait()
					return nil, err
				}
				anon, file, memtab = append(anon, mib(parts.Anon)), append(file, mib(parts.File)), append(memtab, mib(parts.Memtables))
				c.logf("  steady %4.0fs: hub RSS by kind: anonymous %.0f MiB (Go runtime's from the OS less released %.0f; C malloc: in use %.0f and free %.0f in its arenas, %.0f mmap'd, of which resident in memtable-sized mappings %.0f; Pebble's block cache %.0f, memtables %.0f allocated), file-backed %.0f MiB",
					time.Since(steady0).Seconds(), anon[len(anon)-1], goHeld[len(goHeld)-1], cInUse[len(cInUse)-1], cFree[len(cFree)-1], cMmap[len(cMmap)-1], memtab[len(memtab)-1],
					m["replicad_store_block_cache_bytes"]/(1<<20), m["replicad_store_memtable_bytes"]/(1<<20), file[len(file)-1])
			}
			c.logf("  steady %4.0fs: hub RSS %.0f MiB (Go: %.0f obtained from the OS, heap in use %.0f; record cache %.0f; Pebble block cache and memtables %.0f), %d device sessions, %d offline periods, %d API reads",
				time.Since(steady0).Seconds(), mib(rss), sys[len(sys)-1], heap[len(heap)-1], recs[len(recs)-1], caches[len(caches)-1], sessions.Load(), offlines.Load(), reads.Load())
		}
	}
	tick.Stop()
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	if len(ys) < 4 {
		return nil, fmt.Errorf("steady run too short: %d RSS samples", len(ys))
	}
	peak := 0.0
	for _, y := range ys {
		peak = max(peak, y)
	}
	size := float64(dirSize(hub.Dir))
	res.Add("rss-start", "MiB", ys[0])
	res.Add("rss-end", "MiB", ys[len(ys)-1])
	res.Add("rss-peak", "MiB", peak)
	res.Add("rss-slope", "MiB/min", linearSlope(xs, ys))
	// The judged growth: RSS, second quarter to last.
	_, rss2, _, rss4 := quarterMeans(ys)
	res.Add("rss-q2", "MiB", rss2)
	res.Add("rss-q4", "MiB", rss4)
	res.Add("rss-growth", "MiB", rss4-rss2)
	res.Add("rss-growth-pct", "%", 100*(rss4-rss2)/rss2)
	// Its parts over the same quarters. Pebble's block cache fills up to
	// its size as reads touch new blocks (and memtables come and go), the
	// store's record cache as writes touch new records, the Go runtime's
	// memory from the OS as its heap grows: what RSS grew beyond them is
	// neither cache.
	growth := func(v []float64) float64 { _, a, _, b := quarterMeans(v); return b - a }
	res.Add("heap-start", "MiB", heap[0])
	res.Add("heap-end", "MiB", heap[len(heap)-1])
	res.Add("heap-growth", "MiB", growth(heap))
	res.Add("heap-slope", "MiB/min", linearSlope(xs, heap))
	cacheGrowth, recGrowth, sysGrowth := growth(caches), growth(recs), growth(sys)
	res.Add("record-cache-start", "MiB", recs[0])
	res.Add("record-cache-end", "MiB", recs[len(recs)-1])
	res.Add("record-cache-growth", "MiB", recGrowth)
	res.Add("go-sys-start", "MiB", sys[0])
	res.Add("go-sys-end", "MiB", sys[len(sys)-1])
	res.Add("go-sys-growth", "MiB", sysGrowth)
	res.Add("pebble-cache-start", "MiB", caches[0])
	res.Add("pebble-cache-end", "MiB", caches[len(caches)-1])
	res.Add("pebble-cache-growth", "MiB", cacheGrowth)
	// RSS by kind over the same quarters, and the memory within it.
	type series struct {
		name string
		v    []float64
	}
	parts := []series{{"go-held", goHeld}, {"c-malloc-inuse", cInUse}, {"c-malloc-free", cFree}, {"c-malloc-mmap", cMmap}}
	if len(anon) == len(ys) {
		parts = append(parts, series{"rss-anon", anon}, series{"rss-file", file}, series{"rss-memtables", memtab})
	}
	for _, p := range parts {
		res.Add(p.name+"-start", "MiB", p.v[0])
		res.Add(p.name+"-end", "MiB", p.v[len(p.v)-1])
		res.Add(p.name+"-growth", "MiB", growth(p.v))
	}
	if len(anon) == len(ys) {
		c.logf("hub-memory: RSS growth from the second quarter to the last by kind: anonymous %+.1f MiB (Go runtime's from the OS less released %+.1f; C malloc in use %+.1f, free in its arenas %+.1f, mmap'd %+.1f, resident in memtable-sized mappings %+.1f), file-backed %+.1f MiB",
			growth(anon), growth(goHeld), growth(cInUse), growth(cFree), growth(cMmap), growth(memtab), growth(file))
	}
	beyond := rss4 - rss2 - cacheGrowth - recGrowth
	res.Add("rss-growth-beyond-caches", "MiB", beyond)
	// The memory the hub holds: what the Go runtime obtained from the OS
	// and Pebble's caches outside it (reported beside RSS).
	_, sys2, _, _ := quarterMeans(sys)
	_, caches2, _, _ := quarterMeans(caches)
	fp2 := sys2 + caches2
	res.Add("footprint-q2", "MiB", fp2)
	res.Add("footprint-growth", "MiB", sysGrowth+cacheGrowth)
	res.Add("footprint-growth-pct", "%", 100*(sysGrowth+cacheGrowth)/fp2)
	if hub.Dir != "" {
		res.Add("store-size", "MiB", size/(1<<20))
		res.Add("rss/store", "x", rss4/(size/(1<<20)))
	}
	res.Add("sessions", "sessions", float64(sessions.Load()))
	res.Add("offline-periods", "count", float64(offlines.Load()))
	res.Add("api-reads/s", "reads/s", float64(reads.Load())/o.Steady.Seconds())
	res.Add("api-writes", "writes", float64(apiWrites.Load()))
	res.Add("rss-samples", "samples", float64(len(ys)))
	c.logf("hub-memory: RSS %.0f MiB loaded, %.0f→%.0f MiB over the steady run (peak %.0f, second to last quarter %+.1f MiB = %+.1f%%, slope %+.2f MiB/min); Go heap in use %.0f→%.0f MiB (slope %+.2f MiB/min); Pebble block cache and memtables %.0f→%.0f MiB (growth %+.1f MiB), record cache %.0f→%.0f MiB (growth %+.1f MiB), RSS growth beyond these caches %+.1f MiB; Go memory obtained from the OS %.0f→%.0f MiB; store %.0f MiB",
		mib(rssLoaded), ys[0], ys[len(ys)-1], peak, rss4-rss2, 100*(rss4-rss2)/rss2, linearSlope(xs, ys), heap[0], heap[len(heap)-1], linearSlope(xs, heap),
		caches[0], caches[len(caches)-1], cacheGrowth, recs[0], recs[len(recs)-1], recGrowth, beyond, sys[0], sys[len(sys)-1], size/(1<<20))
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// quarterMeans splits samples (taken at a steady interval) into four
// quarters of len/4 samples each, the first from the start and the last
// from the end (a remainder of 1 to 3 samples falls in the middle, into
// no quarter), and returns each quarter's mean. With fewer than 4
// samples every mean is NaN.
func quarterMeans(ys []float64) (q1, q2, q3, q4 float64) {
	n := len(ys) / 4
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	return mean(ys[:n]), mean(ys[n : 2*n]), mean(ys[len(ys)-2*n : len(ys)-n]), mean(ys[len(ys)-n:])
}

// eachDevice runs f for every device, 32 at a time, and returns the first
// error.
func eachDevice(devs []*SimDevice, f func(*SimDevice) error) error {
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(d); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
