package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/replicad/replicad/store"
)

// CompactResult is the answer to POST /v1/compact: the store's disk use
// (allocated bytes, by kind) before and after a full online compaction,
// and how long it took.
type CompactResult struct {
	Before     store.DiskUsage `json:"before"`
	After      store.DiskUsage `json:"after"`
	FreedBytes int64           `json:"freed_bytes"`
	DurationMs int64           `json:"duration_ms"`
}

// compact is POST /v1/compact: flushes the memtable and compacts the
// whole store while the agent keeps serving (reads, writes and syncs go
// on; the replica is not closed). The body is empty or {}.
func (a *Agent) compact(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.ContentLength != 0 {
		var body struct{}
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
	}
	return a.with(func(rp *replica) (any, error) {
		c, err := rp.store.Compact(r.Context())
		if err != nil {
			return nil, err
		}
		a.log.Info("store compacted", "before_bytes", c.Before.Total, "after_bytes", c.After.Total, "duration", c.Duration)
		return CompactResult{Before: c.Before, After: c.After, FreedBytes: c.Before.Total - c.After.Total, DurationMs: c.Duration.Milliseconds()}, nil
	})
}

// diskStatus adds the store's disk use to the status ("disk"; an error
// reading the directory is reported in its place).
func (rp *replica) diskStatus(st map[string]any) {
	u, err := rp.store.DiskUsage()
	if err != nil {
		st["disk"] = map[string]any{"error": err.Error()}
		return
	}
	st["disk"] = u
}

var descDisk = prometheus.NewDesc("replicad_store_disk_bytes", "Bytes the store's data directory takes on disk (allocated blocks, as du counts), by kind: sst (tables), wal (write-ahead logs), other (manifest, options, markers).", []string{"kind"}, nil)

// diskCollector reads the store's disk use at scrape time.
type diskCollector struct{ a *Agent }

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descDisk }

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	c.a.mu.RLock()
	defer c.a.mu.RUnlock()
	if c.a.rep == nil {
		return
	}
	u, err := c.a.rep.store.DiskUsage()
	if err != nil {
		return
	}
	for _, k := range []struct {
		kind string
		n    int64
	}{{"sst", u.SST}, {"wal", u.WAL}, {"other", u.Other}} {
		ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(k.n), k.kind)
	}
}

// storeOptions are the store's options for this agent's role. A hub
// keeps Pebble's defaults for its write-ahead logs (preallocated to 110%
// of a 32 MiB memtable, up to three obsolete ones kept for reuse: synced
// writes from a fleet reuse written blocks); a device takes an 8 MiB
// memtable and logs that take only the blocks they are written, deleted
// once flushed (ARCHITECTURE.md, "Disk").
func (a *Agent) storeOptions() store.Options {
	cfg := a.cfg
	o := store.Options{Dir: a.storeDir(), Logger: a.log.Named("pebble"), ClusterID: cfg.ClusterID, NodeID: a.sec.newNodeID(), EncryptionKey: a.atRestKey,
		MaxParkedPerOrigin: cfg.Security.Guard.WithDefaults().MaxParked}
	if cfg.Role == "hub" {
		o.WALPreallocate, o.WALRecycling = true, true
	} else {
		o.MemTableSize = store.DeviceMemTableSize
	}
	return o
}
