package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replicad/replicad/client"
)

// Config is what every scenario needs.
type Config struct {
	Bin     string    // the replicad binary to start agents with
	Dir     string    // work directory: agents' data and the baselines' Pebble
	Log     io.Writer // progress lines
	Runs    int       // repetitions where a scenario repeats (median and spread)
	Cluster string    // cluster id of the agents (default "replicad")

	// API, if set, is a running agent's API for the write scenarios
	// (otherwise a device agent is started).
	API string
	// HubAPI and HubSync, if set, are a running hub's addresses for the
	// hub scenarios (otherwise a hub is started per scenario).
	HubAPI, HubSync string
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *Config) cluster() string {
	if c.Cluster == "" {
		return "replicad"
	}
	return c.Cluster
}

func (c *Config) runs() int { return max(c.Runs, 1) }

// startOrUse starts an agent (role hub or device) in Dir/name, or
// addresses the running one given.
func (c *Config) startOrUse(ctx context.Context, name, api, syncAddr string, extra ...string) (*Agent, error) {
	if api != "" {
		return &Agent{API: api, Sync: syncAddr}, nil
	}
	if c.Bin == "" {
		return nil, fmt.Errorf("no replicad binary to start agents with (and no running agent given)")
	}
	dir := filepath.Join(c.Dir, name)
	os.RemoveAll(dir)
	return StartAgent(ctx, c.Bin, dir, append([]string{"--cluster-id", c.cluster()}, extra...)...)
}

// WriteLatencyOpts: one API client writing durably, one request at a time.
type WriteLatencyOpts struct {
	Writes int // per run
}

// WriteLatency measures durable local writes through the API, one client:
// p50 and p99 of PUT (one field), against raw Pebble synced Sets of the
// store's batch size on the same disk; the HTTP overhead measured
// separately: the same PUTs against the HTTP-alone server (a loopback
// server that only decodes the body), in each run; and, for context, GETs
// of the same records through the agent (no fsync, but the agent's
// handler and store read).
func WriteLatency(ctx context.Context, c *Config, o WriteLatencyOpts) (*Result, error) {
	n := max(o.Writes, 10)
	start := time.Now()
	a, err := c.startOrUse(ctx, "api-latency", c.API, "")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	api := newAPIClient(a.API, 1)
	defer api.close()
	res := &Result{Name: "api-write-1", Params: map[string]any{"writes": n, "runs": c.runs(), "records": 1000, "value_bytes": 280}}
	// Warm up: the connection, the records.
	for i := range 1000 {
		if err := api.put(ctx, "bench", "r"+strconv.Itoa(i), putBodies[i%len(putBodies)]); err != nil {
			return nil, err
		}
	}
	for run := range c.runs() {
		lat := make([]time.Duration, 0, n)
		for i := range n {
			t := time.Now()
			if err := api.put(ctx, "bench", "r"+strconv.Itoa(i%1000), putBodies[i%len(putBodies)]); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t))
		}
		slices.Sort(lat)
		get := make([]time.Duration, 0, n)
		for i := range n {
			t := time.Now()
			if err := api.get(ctx, "bench", "r"+strconv.Itoa(i%1000)); err != nil {
				return nil, err
			}
			get = append(get, time.Since(t))
		}
		slices.Sort(get)
		raw, err := RawSyncedSets(filepath.Join(c.Dir, "raw-latency"), 1, n, 0, 280)
		if err != nil {
			return nil, err
		}
		alone, err := HTTPAloneLatency(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("HTTP alone: %w", err)
		}
		p := func(l []time.Duration, q float64) float64 { return us(Percentile(l, q)) }
		res.Add("p50", "µs", p(lat, 50))
		res.Add("p99", "µs", p(lat, 99))
		res.Add("raw-p50", "µs", p(raw.Latencies, 50))
		res.Add("raw-p99", "µs", p(raw.Latencies, 99))
		res.Add("http-alone-p50", "µs", p(alone, 50))
		res.Add("http-alone-p99", "µs", p(alone, 99))
		res.Add("get-p50", "µs", p(get, 50))
		res.Add("get-p99", "µs", p(get, 99))
		res.Add("p99/raw-p99", "x", p(lat, 99)/p(raw.Latencies, 99))
		res.Add("writes/s", "writes/s", float64(n)/sumDur(lat).Seconds())
		c.logf("api-write-1 run %d/%d: PUT p50 %.0fµs p99 %.0fµs; raw Pebble synced Set p50 %.0fµs p99 %.0fµs; HTTP alone p50 %.0fµs p99 %.0fµs; GET p50 %.0fµs p99 %.0fµs",
			run+1, c.runs(), p(lat, 50), p(lat, 99), p(raw.Latencies, 50), p(raw.Latencies, 99), p(alone, 50), p(alone, 99), p(get, 50), p(get, 99))
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func sumDur(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// WriteThroughputOpts: concurrent API clients writing durably.
type WriteThroughputOpts struct {
	Clients  int
	Duration time.Duration // per run
}

// WriteThroughput measures durable local writes per second through the
// API with Clients concurrent clients (the store's group commit shares
// fsyncs between them), against raw Pebble synced Sets with the same
// concurrency on the same disk.
func WriteThroughput(ctx context.Context, c *Config, o WriteThroughputOpts) (*Result, error) {
	clients := max(o.Clients, 1)
	d := max(o.Duration, 500*time.Millisecond)
	start := time.Now()
	a, err := c.startOrUse(ctx, "api-throughput", c.API, "")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	api := newAPIClient(a.API, clients)
	defer api.close()
	name := fmt.Sprintf("api-write-%d", clients)
	res := &Result{Name: name, Params: map[string]any{"clients": clients, "seconds": d.Seconds(), "runs": c.runs(), "value_bytes": 280}}
	for run := range c.runs() {
		var ctr atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		var firstErr error
		var wg sync.WaitGroup
		t0 := time.Now()
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for time.Since(t0) < d {
					i := ctr.Add(1)
					t := time.Now()
					if err := api.put(ctx, "bench", "r"+strconv.Itoa(int(i%1000)), putBodies[(int(i)+k)%len(putBodies)]); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		if firstErr != nil {
			return nil, firstErr
		}
		slices.Sort(lat)
		raw, err := RawSyncedSets(filepath.Join(c.Dir, "raw-throughput"), clients, 0, d, 280)
		if err != nil {
			return nil, err
		}
		ceiling, err := HTTPCeiling(ctx, clients, d)
		if err != nil {
			return nil, err
		}
		rate := float64(len(lat)) / el.Seconds()
		res.Add("writes/s", "writes/s", rate)
		res.Add("raw-writes/s", "writes/s", raw.PerSecond)
		res.Add("ratio", "x", rate/raw.PerSecond)
		res.Add("http-ceiling/s", "requests/s", ceiling)
		res.Add("ceiling-ratio", "x", rate/ceiling)
		res.Add("p99", "µs", us(Percentile(lat, 99)))
		res.Add("raw-p99", "µs", us(Percentile(raw.Latencies, 99)))
		c.logf("%s run %d/%d: %.0f writes/s through the API (p99 %.0fµs); raw Pebble %.0f synced Sets/s (p99 %.0fµs): %.2fx; HTTP alone (a server that only decodes the body) %.0f requests/s: %.2fx",
			name, run+1, c.runs(), rate, us(Percentile(lat, 99)), raw.PerSecond, us(Percentile(raw.Latencies, 99)), rate/raw.PerSecond, ceiling, rate/ceiling)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// HubFaninOpts: devices that wrote offline sync with a hub at once.
type HubFaninOpts struct {
	Devices int
	Writes  int // single-field writes per device per run
}

// HubFanin measures the hub applying writes from Devices devices syncing
// at the same moment: each simulated device makes Writes single-field
// writes offline, then all of them run a session with the hub at once
// (refused sessions retry, as the engine does). Field changes per second
// is all the writes over the time until the last session ends; the hub's
// own counter of applied remote writes must account for every one. The
// baseline is raw Pebble applying the same number of writes (log and
// record keys) as synced batches of a chunk's writes, from as many
// goroutines as devices, on the same disk. The hub's CPU time per change
// and its resident memory show how the cost grows with the fleet.
func HubFanin(ctx context.Context, c *Config, o HubFaninOpts) (*Result, error) {
	nd, k := max(o.Devices, 1), max(o.Writes, 1)
	start := time.Now()
	hub, err := c.startOrUse(ctx, fmt.Sprintf("hub-fanin-%d", nd), c.HubAPI, c.HubSync, "--role", "hub")
	if err != nil {
		return nil, err
	}
	defer hub.Stop()
	res := &Result{Name: fmt.Sprintf("hub-fanin/devices=%d", nd), Params: map[string]any{"devices": nd, "writes_per_device": k, "runs": c.runs()}}
	devs := make([]*SimDevice, nd)
	for i := range devs {
		if devs[i], err = NewSimDevice(i, 200, c.cluster()); err != nil {
			return nil, err
		}
		defer devs[i].Close()
	}
	for run := range c.runs() {
		for _, d := range devs {
			if err := d.Write(k); err != nil {
				return nil, err
			}
		}
		m0, err := hub.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		stats := make([]SyncStats, nd)
		errs := make([]error, nd)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stats[i], errs[i] = d.Sync(ctx, hub.Sync)
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		for i, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("device %d: %w", i, err)
			}
		}
		m1, err := hub.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		applied := m1["replicad_writes_applied_remote_total"] - m0["replicad_writes_applied_remote_total"]
		if int(applied) != nd*k {
			return nil, fmt.Errorf("hub applied %.0f remote writes, the devices sent %d", applied, nd*k)
		}
		var refused, failed, chunks, sent int
		var sess []time.Duration
		for _, s := range stats {
			refused += s.Refused
			failed += s.Failed
			chunks += int(s.ChunksSent)
			sent += int(s.WritesSent)
			sess = append(sess, s.Duration)
		}
		if sent != nd*k {
			return nil, fmt.Errorf("devices sent %d writes, want %d", sent, nd*k)
		}
		slices.Sort(sess)
		batch := max(k*nd/max(chunks, 1), 1)
		raw, err := RawBatched(filepath.Join(c.Dir, "raw-fanin"), nd, k, batch)
		if err != nil {
			return nil, err
		}
		rate := float64(nd*k) / el.Seconds()
		cpu := m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]
		rss, _ := hub.RSS(ctx)
		res.Add("changes/s", "changes/s", rate)
		res.Add("raw-changes/s", "changes/s", raw)
		res.Add("ratio", "x", rate/raw)
		res.Add("seconds", "s", el.Seconds())
		res.Add("hub-cpu/change", "µs", cpu/float64(nd*k)*1e6)
		res.Add("session-p50", "ms", float64(Percentile(sess, 50).Milliseconds()))
		res.Add("session-max", "ms", float64(sess[len(sess)-1].Milliseconds()))
		res.Add("refused", "sessions", float64(refused))
		res.Add("failed", "sessions", float64(failed))
		res.Add("hub-rss", "MiB", float64(rss)/(1<<20))
		c.logf("hub-fanin devices=%d run %d/%d: %d changes in %.2fs = %.0f/s (hub CPU %.1fµs/change, %d refusals, slowest session %v); raw Pebble batches of %d: %.0f/s: %.2fx",
			nd, run+1, c.runs(), nd*k, el.Seconds(), rate, cpu/float64(nd*k)*1e6, refused, sess[len(sess)-1].Round(time.Millisecond), batch, raw, rate/raw)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// InitialSyncOpts: a new device's first sync of a whole data set.
type InitialSyncOpts struct {
	Records int
	Fields  int
}

// InitialSync measures a new full-scope device agent's first sync of
// Records records from a hub: the hub is filled by a Loader, then a
// device agent starts (it syncs by itself) and is asked to sync now
// through its API; the time runs until it has applied every write, its
// progress shown from its status while it runs. Baseline: the bytes the session moved
// over raw loopback TCP.
func InitialSync(ctx context.Context, c *Config, o InitialSyncOpts) (*Result, error) {
	n, nf := max(o.Records, 1), max(o.Fields, 1)
	start := time.Now()
	hub, err := c.startOrUse(ctx, "initsync-hub", c.HubAPI, c.HubSync, "--role", "hub")
	if err != nil {
		return nil, err
	}
	defer hub.Stop()
	res := &Result{Name: fmt.Sprintf("initial-sync/records=%d", n), Params: map[string]any{"records": n, "fields": nf, "runs": c.runs()}}
	if err := load(ctx, c, hub, "profile", n, nf, res); err != nil {
		return nil, err
	}
	for run := range c.runs() {
		dir := filepath.Join(c.Dir, "initsync-device")
		os.RemoveAll(dir)
		dev, err := StartAgent(ctx, c.Bin, dir, "--cluster-id", c.cluster(), "--hub", hub.Sync, "--pull-interval", "24h")
		if err != nil {
			return nil, err
		}
		cl := client.New(dev.API)
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				st, err := cl.Status(ctx)
				if err == nil && st.Sync.Running {
					p := st.Sync.Progress
					c.logf("  initial sync: %d/%d writes applied (%.0f%%), %.1f MB received", p.WritesApplied, n, 100*float64(p.WritesApplied)/float64(n), float64(p.BytesReceived)/1e6)
				}
			}
		}()
		// A device syncs with its hub by itself once it starts (its watch
		// link hears of the hub's writes), and sync now waits for a session
		// in progress: the initial sync is timed from the agent answering
		// until it has applied every write, in whichever session; the
		// bytes are what its sessions moved (its metrics).
		t0 := time.Now()
		sum, err := cl.Sync(ctx)
		if err == nil && sum.Succeeded != 1 {
			err = fmt.Errorf("device sync: %+v", sum)
		}
		var m map[string]float64
		for err == nil {
			if m, err = dev.Metrics(ctx); err != nil {
				break
			}
			if int(m["replicad_writes_applied_remote_total"]) >= n {
				break
			}
			if time.Since(t0) > 10*time.Minute {
				err = fmt.Errorf("device applied %.0f of %d writes in 10 minutes", m["replicad_writes_applied_remote_total"], n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(t0)
		close(done)
		dev.Stop()
		if err != nil {
			return nil, err
		}
		bytes := m["replicad_sync_bytes_received_total"] + m["replicad_sync_bytes_sent_total"]
		tput, err := LoopbackThroughput(int64(bytes))
		if err != nil {
			return nil, err
		}
		base := bytes / tput
		res.Add("seconds", "s", el.Seconds())
		res.Add("records/s", "records/s", float64(n)/el.Seconds())
		res.Add("MB", "MB", bytes/1e6)
		res.Add("loopback-seconds", "s", base)
		res.Add("ratio", "x", el.Seconds()/base)
		c.logf("initial-sync run %d/%d: %d records in %.2fs (%.0f/s, %.1f MB); raw loopback moves those bytes in %.3fs: %.0fx",
			run+1, c.runs(), n, el.Seconds(), float64(n)/el.Seconds(), bytes/1e6, base, el.Seconds()/base)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// load fills hub with n records of table (through a Loader's session)
// and records the hub's ingest rate in res.
func load(ctx context.Context, c *Config, hub *Agent, table string, n, fields int, res *Result) error {
	dir := filepath.Join(c.Dir, "loader-"+table)
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	c.logf("  building %d records of %d fields to load into the hub", n, fields)
	l, err := NewLoader(dir, c.cluster(), table, n, fields, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	t0 := time.Now()
	st, err := l.Sync(ctx, hub.Sync)
	if err != nil {
		return fmt.Errorf("loading the hub: %w", err)
	}
	el := time.Since(t0)
	if int(st.WritesSent) != n {
		return fmt.Errorf("loader sent %d writes, want %d", st.WritesSent, n)
	}
	res.Add("hub-ingest", "records/s", float64(n)/el.Seconds())
	c.logf("  hub ingested %d records in %.2fs (%.0f/s, %.1f MB sent)", n, el.Seconds(), float64(n)/el.Seconds(), float64(st.BytesSent)/1e6)
	return nil
}

// linearSlope is the least-squares slope of ys over xs.
func linearSlope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
