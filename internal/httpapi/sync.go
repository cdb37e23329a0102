package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/syncround"
	"github.com/replicad/replicad/store"
)

// Replica is what the sync, connectivity and reset routes need of the
// replica; the assembly implements it.
type Replica interface {
	// SyncNow is a sync asked for: a round with every partner, then up to
	// wait for the arbiter's decisions (internal/syncround).
	SyncNow(ctx context.Context, wait time.Duration) (api.Summary, error)
	// SetOnline turns sync and gossip on or off.
	SetOnline(on bool) error
	// Reset moves the store aside, opens a fresh one with a new node id
	// and syncs it; it answers the new node, where the store went, and
	// the sync's summary.
	Reset(ctx context.Context) (any, error)
}

// Sync serves POST /v1/sync, POST /v1/connectivity, POST /v1/reset and
// POST /v1/compact.
type Sync struct {
	Core    Core
	Replica Replica
	Log     hclog.Logger
}

// DecisionWait parses POST /v1/sync's ?wait=DURATION (default
// syncround.DefaultDecisionWait; 0: do not wait).
func DecisionWait(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return syncround.DefaultDecisionWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > syncround.MaxDecisionWait {
		return 0, Errorf(http.StatusBadRequest, "wait=%q: want a duration from 0s to %v, such as 10s", s, syncround.MaxDecisionWait)
	}
	return d, nil
}

// Now is POST /v1/sync.
func (s Sync) Now(w http.ResponseWriter, r *http.Request) (any, error) {
	wait, err := DecisionWait(r)
	if err != nil {
		return nil, err
	}
	return s.Replica.SyncNow(r.Context(), wait)
}

// Connectivity is POST /v1/connectivity.
func (s Sync) Connectivity(w http.ResponseWriter, r *http.Request) (any, error) {
	var body api.ConnectivityRequest
	if err := DecodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Online == nil {
		return nil, Errorf(http.StatusBadRequest, `body needs "online": true or false`)
	}
	if err := s.Replica.SetOnline(*body.Online); err != nil {
		return nil, err
	}
	return map[string]bool{"online": *body.Online}, nil
}

// Reset is POST /v1/reset: it clears the local replica and resyncs it
// (Replica.Reset), once the body confirms it.
func (s Sync) Reset(w http.ResponseWriter, r *http.Request) (any, error) {
	var body api.ResetRequest
	if err := DecodeBody(r, &body); err != nil {
		return nil, err
	}
	if !body.Confirm {
		return nil, Errorf(http.StatusBadRequest, `reset needs {"confirm": true}: it discards this replica's store (moved aside) and resyncs it`)
	}
	return s.Replica.Reset(r.Context())
}

// CompactResult is the answer to POST /v1/compact: the store's disk use
// (allocated bytes, by kind) before and after a full online compaction,
// and how long it took.
type CompactResult struct {
	Before     store.DiskUsage `json:"before"`
	After      store.DiskUsage `json:"after"`
	FreedBytes int64           `json:"freed_bytes"`
	DurationMs int64           `json:"duration_ms"`
}

// Compact is POST /v1/compact: flushes the memtable and compacts the
// whole store while the agent keeps serving (reads, writes and syncs go
// on; the replica is not closed). The body is empty or {}.
func (s Sync) Compact(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.ContentLength != 0 {
		var body struct{}
		if err := DecodeBody(r, &body); err != nil {
			return nil, err
		}
	}
	return s.Core.With(func(n *node.Node) (any, error) {
		c, err := n.Store().Compact(r.Context())
		if err != nil {
			return nil, err
		}
		s.Log.Info("store compacted", "before_bytes", c.Before.Total, "after_bytes", c.After.Total, "duration", c.Duration)
		return CompactResult{Before: c.Before, After: c.After, FreedBytes: c.Before.Total - c.After.Total, DurationMs: c.Duration.Milliseconds()}, nil
	})
}
