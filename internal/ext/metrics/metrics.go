package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Host is what the metrics read of the agent at scrape time.
type Host interface {
	// Scrape runs fn on the current replica, under the agent's lock; not
	// while there is none (a reset or a reopen).
	Scrape(fn func(r Replica))
}

// Replica is what a scrape reads of a replica.
type Replica interface {
	Store() *store.Store
	Engine() *replication.Engine
	// Counts are the open conflicts, the sync errors not retried by kind
	// (rejected, overridden) and the parked writes.
	Counts() (conflicts, rejected, overridden, parked int)
	// PendingOutbound is the own writes no hub is known to hold, and
	// whether the count means something here.
	PendingOutbound() (n uint64, means bool)
	// PeerCounts is the peer table's size by direction.
	PeerCounts() map[string]int
	// Workflows are the workflows' states (a hub's).
	Workflows() []api.Workflow
	// OpenDuplicates is the number of open duplicate flags.
	OpenDuplicates() (int, error)
}

// Build says which build runs (replicad_build_info).
type Build struct {
	Version, Revision, GoVersion string
}

// Metrics are the agent's Prometheus metrics, on a registry of its own.
type Metrics struct {
	reg           *prometheus.Registry
	localApplied  prometheus.Counter
	remoteApplied prometheus.Counter
	parkedSeen    prometheus.Counter
	parkRefused   prometheus.Counter
	syncRounds    *prometheus.CounterVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	rejected      *prometheus.CounterVec
	peerRefused   prometheus.Counter
	sessions      *prometheus.CounterVec   // by direction and result
	sessionTime   *prometheus.HistogramVec // by direction
	httpRequests  *prometheus.CounterVec   // by route (the pattern) and code
	httpTime      *prometheus.HistogramVec // by route
	sysRefused    prometheus.Counter
}

// New returns the metrics of the agent h (nil: no scrape-time gauges),
// built bi.
func New(h Host, bi Build) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := prometheus.NewCounter
	m.localApplied = f(prometheus.CounterOpts{Name: "replicad_writes_applied_local_total", Help: "Local writes made through the API."})
	m.remoteApplied = f(prometheus.CounterOpts{Name: "replicad_writes_applied_remote_total", Help: "Remote writes applied (sync sessions and gossip pushes)."})
	m.parkedSeen = f(prometheus.CounterOpts{Name: "replicad_writes_parked_total", Help: "Remote writes parked because their stamp was beyond the clock bound."})
	m.parkRefused = f(prometheus.CounterOpts{Name: "replicad_writes_park_refused_total", Help: "Remote writes not parked because their origin had --max-parked parked writes (offered again later)."})
	m.syncRounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replicad_sync_rounds_total", Help: "Sync rounds started through the API (sync now), by result."}, []string{"result"})
	m.bytesIn = f(prometheus.CounterOpts{Name: "replicad_sync_bytes_received_total", Help: "Bytes received in sync sessions, served and dialed."})
	m.bytesOut = f(prometheus.CounterOpts{Name: "replicad_sync_bytes_sent_total", Help: "Bytes sent in sync sessions, served and dialed."})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replicad_sync_sessions_total",
		Help: "Sync sessions ended, by direction (served: a peer dialed this node; dialed) and result (ok, refused, failed)."}, []string{"direction", "result"})
	m.sessionTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "replicad_sync_session_duration_seconds",
		Help:    "Duration of sync sessions, by direction, whatever their result.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"direction"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replicad_http_requests_total",
		Help: "API requests answered, by route (the route's pattern, e.g. \"GET /v1/tables/{table}/records/{id}\"; \"unmatched\" for none) and status code."}, []string{"route", "code"})
	m.httpTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "replicad_http_request_duration_seconds",
		Help:    "Time to answer API requests, by route (long polls and event streams included).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30, 120}}, []string{"route"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "replicad_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion}})
	buildInfo.Set(1)
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replicad_api_rejected_total", Help: "API requests rejected with a 4xx, by status."}, []string{"code"})
	m.peerRefused = f(prometheus.CounterOpts{Name: "replicad_peer_writes_refused_total", Help: "Writes a device peer sent that were not taken (outside their origin's grant, or no valid grant): neither applied nor held."})
	m.sysRefused = f(prometheus.CounterOpts{Name: "replicad_system_writes_refused_total", Help: "Remote writes to system tables (_replicad_*) a hub refused: their origin may not make them (elided, written back over, logged)."})
	m.reg.MustRegister(m.localApplied, m.remoteApplied, m.parkedSeen, m.syncRounds, m.bytesIn, m.bytesOut, m.rejected, m.peerRefused, m.sysRefused,
		m.sessions, m.sessionTime, m.httpRequests, m.httpTime, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&agentCollector{h: h}, &onlineCollector{h: h}, &defenceCollector{h: h}, &diskCollector{h: h}, cmemCollector{})
	return m
}

// Handler serves the exposition (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// agentCollector reads gauges from the agent at scrape time.
type agentCollector struct{ h Host }

var (
	descConflicts  = prometheus.NewDesc("replicad_conflicts_open", "Fields with more than one live candidate.", nil, nil)
	descSyncErrors = prometheus.NewDesc("replicad_sync_errors", "Entries in the sync-error log not yet retried, by kind: rejected (a change undone) or overridden (a value lww or client-wins kept out).", []string{"kind"}, nil)
	descParked     = prometheus.NewDesc("replicad_parked_writes", "Remote writes parked now (stamp beyond the clock bound).", nil, nil)
	descPending    = prometheus.NewDesc("replicad_pending_outbound_writes", "Local writes not yet known to be held by a hub (approximation, see status).", nil, nil)
	descStoreSize  = prometheus.NewDesc("replicad_store_size_bytes", "Pebble's on-disk size (tables and WAL).", nil, nil)
	descOnline     = prometheus.NewDesc("replicad_online", "1 when the node may use the network.", nil, nil)
	descBlockCache = prometheus.NewDesc("replicad_store_block_cache_bytes", "Bytes in Pebble's block cache (bounded by its size, 128 MiB by default).", nil, nil)
	descRecCache   = prometheus.NewDesc("replicad_store_record_cache_bytes", "Approximate bytes of decoded records the store's write paths keep (bounded, 64 MiB by default).", nil, nil)
	descMemtables  = prometheus.NewDesc("replicad_store_memtable_bytes", "Bytes allocated by Pebble's memtables (32 MiB each), zombie ones included.", nil, nil)
	descSkew       = prometheus.NewDesc("replicad_peer_clock_skew_seconds", "A peer's physical clock minus this node's, measured at the last handshake.", []string{"peer", "node"}, nil)
	descSyncAge    = prometheus.NewDesc("replicad_peer_last_sync_age_seconds", "Time since the last successful sync with a peer (absent if never).", []string{"peer", "node"}, nil)
	descPeers      = prometheus.NewDesc("replicad_peers", "Nodes in the peer table (every node that synced with this one), by direction of their sessions.", []string{"direction"}, nil)
	descFailures   = prometheus.NewDesc("replicad_peer_sync_failures", "Consecutive failed syncs with a peer.", []string{"peer", "node"}, nil)
)

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConflicts, descSyncErrors, descParked, descPending, descStoreSize, descOnline, descBlockCache, descMemtables, descRecCache, descSkew, descSyncAge, descFailures, descPeers} {
		ch <- d
	}
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h == nil {
		return
	}
	c.h.Scrape(func(r Replica) {
		g := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		conflicts, rejected, overridden, parked := r.Counts()
		g(descConflicts, float64(conflicts))
		g(descSyncErrors, float64(rejected), node.KindRejected)
		g(descSyncErrors, float64(overridden), node.KindOverridden)
		g(descParked, float64(parked))
		if n, means := r.PendingOutbound(); means {
			g(descPending, float64(n))
		}
		for dir, n := range r.PeerCounts() {
			g(descPeers, float64(n), dir)
		}
		st := r.Store()
		m := st.Metrics()
		g(descStoreSize, float64(m.DiskSpaceUsage()))
		g(descBlockCache, float64(m.BlockCache.Size))
		g(descMemtables, float64(m.MemTable.Size+m.MemTable.ZombieSize))
		g(descRecCache, float64(st.RecordCacheBytes()))
		online := 0.0
		if r.Engine().Online() {
			online = 1
		}
		g(descOnline, online)
		now := time.Now()
		for _, p := range r.Engine().Partners() {
			node := ""
			if p.Node != 0 {
				node = p.Node.String()
			}
			g(descSkew, float64(p.SkewMs)/1000, p.Addr, node)
			g(descFailures, float64(p.Failures), p.Addr, node)
			if !p.LastSuccess.IsZero() {
				g(descSyncAge, now.Sub(p.LastSuccess).Seconds(), p.Addr, node)
			}
		}
	})
}

// Session counts a finished sync session.
func (m *Metrics) Session(in replication.SessionInfo) {
	dir := "served"
	if in.Dialed {
		dir = "dialed"
	}
	m.sessions.WithLabelValues(dir, sessionResult(in.Err)).Inc()
	m.sessionTime.WithLabelValues(dir).Observe(in.Duration.Seconds())
	m.bytesIn.Add(float64(in.Stats.BytesReceived))
	m.bytesOut.Add(float64(in.Stats.BytesSent))
}

// Instrument counts and times every API request by route and status code.
// route returns the request's route pattern ("" for none): labels are the
// registered patterns, never raw paths, so their number is bounded.
func (m *Metrics) Instrument(route func(*http.Request) string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := route(r)
		if rt == "" {
			rt = "unmatched"
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			m.httpRequests.WithLabelValues(rt, strconv.Itoa(code)).Inc()
			m.httpTime.WithLabelValues(rt).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status code written; it flushes (event
// streams) and unwraps (http.ResponseController) to the writer it wraps.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sessionResult is a session's result label: "ok", "refused" or "failed".
func sessionResult(err error) string {
	var re *replication.RefusedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &re):
		return "refused"
	}
	return "failed"
}

// LocalWrite counts a local write (an observer of the write pipeline).
func (m *Metrics) LocalWrite() { m.localApplied.Inc() }

// RemoteApplied counts a batch of remote writes applied, parked of them
// parked.
func (m *Metrics) RemoteApplied(applied, parked int) {
	m.remoteApplied.Add(float64(applied))
	m.parkedSeen.Add(float64(parked))
}

// ParkRefused counts remote writes not parked (their origin's bound).
func (m *Metrics) ParkRefused(n int) { m.parkRefused.Add(float64(n)) }

// SyncRound counts a sync asked for through the API, by result.
func (m *Metrics) SyncRound(result string) { m.syncRounds.WithLabelValues(result).Inc() }

// Rejected counts an API request answered with the 4xx code.
func (m *Metrics) Rejected(code int) { m.rejected.WithLabelValues(strconv.Itoa(code)).Inc() }

// PeerRefused counts a write a device peer sent that was not taken.
func (m *Metrics) PeerRefused() { m.peerRefused.Inc() }

// SysRefused counts a remote write to a system table a hub refused.
func (m *Metrics) SysRefused() { m.sysRefused.Inc() }

// diskCollector reads the store's disk use at scrape time.
type diskCollector struct{ h Host }

var descDisk = prometheus.NewDesc("replicad_store_disk_bytes", "Bytes the store's data directory takes on disk (allocated blocks, as du counts), by kind: sst (tables), wal (write-ahead logs), other (manifest, options, markers).", []string{"kind"}, nil)

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descDisk }

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h == nil {
		return
	}
	c.h.Scrape(func(r Replica) {
		u, err := r.Store().DiskUsage()
		if err != nil {
			return
		}
		for _, k := range []struct {
			kind string
			n    int64
		}{{"sst", u.SST}, {"wal", u.WAL}, {"other", u.Other}} {
			ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(k.n), k.kind)
		}
	})
}
