package syncround

import (
	"context"
	"sync"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// Progress is the running totals of the syncs asked for in progress (the
// status's "sync"). It outlives the replicas a reset replaces.
type Progress struct {
	mu      sync.Mutex
	running int
	started time.Time
	stats   replication.Stats
}

// Rounder runs a round with every partner now (replication.Engine).
type Rounder interface {
	SyncNow(ctx context.Context, progress func(replication.Stats)) replication.Summary
}

// Round runs a round with every partner of e, its figures as it goes in
// p; ok is false when a partner failed.
func (p *Progress) Round(ctx context.Context, e Rounder) (sum api.Summary, ok bool) {
	p.mu.Lock()
	if p.running == 0 {
		p.started = time.Now()
		p.stats = replication.Stats{}
	}
	p.running++
	p.mu.Unlock()
	start := time.Now()
	s := e.SyncNow(ctx, func(s replication.Stats) {
		p.mu.Lock()
		p.stats = s
		p.mu.Unlock()
	})
	p.mu.Lock()
	p.running--
	p.mu.Unlock()
	failed := s.Failed
	if failed == nil {
		failed = []string{}
	}
	return api.Summary{Partners: s.Partners, Succeeded: s.Succeeded, Failed: failed, Stats: node.StatsView(s.Stats), Millis: time.Since(start).Milliseconds()}, len(s.Failed) == 0
}

// State is what the status shows of the syncs in progress.
func (p *Progress) State() api.SyncState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var started string
	if !p.started.IsZero() {
		started = p.started.UTC().Format(time.RFC3339Nano)
	}
	return api.SyncState{Running: p.running > 0, Started: started, Progress: node.StatsView(p.stats)}
}
