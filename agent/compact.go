package agent

import (
	"net/http"

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

// storeOptions are the store's options for this agent's role. A hub
// keeps Pebble's defaults for its write-ahead logs (preallocated to 110%
// of a 32 MiB memtable, up to three obsolete ones kept for reuse: synced
// writes from a fleet reuse written blocks); a device takes an 8 MiB
// memtable and logs that take only the blocks they are written, deleted
// once flushed (ARCHITECTURE.md, "Disk").
func (a *Agent) storeOptions() store.Options {
	cfg := a.cfg
	o := store.Options{Dir: a.storeDir(), Logger: a.log.Named("pebble"), ClusterID: cfg.ClusterID, NodeID: a.sec.NewNodeID(), EncryptionKey: a.atRestKey,
		MaxParkedPerOrigin: cfg.Security.Guard.WithDefaults().MaxParked}
	if cfg.Role == "hub" {
		o.WALPreallocate, o.WALRecycling = true, true
	} else {
		o.MemTableSize = store.DeviceMemTableSize
	}
	return o
}
