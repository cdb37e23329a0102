package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// --- sync, connectivity, status ---

// syncProgress is the running totals of the current API-triggered sync.
type syncProgress struct {
	mu      sync.Mutex
	running int
	started time.Time
	stats   replication.Stats
}

func (a *Agent) runSync(ctx context.Context, rp *replica) api.Summary {
	a.prog.mu.Lock()
	if a.prog.running == 0 {
		a.prog.started = time.Now()
		a.prog.stats = replication.Stats{}
	}
	a.prog.running++
	a.prog.mu.Unlock()
	start := time.Now()
	sum := rp.engine.SyncNow(ctx, func(s replication.Stats) {
		a.prog.mu.Lock()
		a.prog.stats = s
		a.prog.mu.Unlock()
	})
	a.prog.mu.Lock()
	a.prog.running--
	a.prog.mu.Unlock()
	result := "ok"
	if len(sum.Failed) > 0 {
		result = "failed"
	}
	a.metrics.SyncRound(result) // bytes: counted per session (metrics.session)
	failed := sum.Failed
	if failed == nil {
		failed = []string{}
	}
	return api.Summary{Partners: sum.Partners, Succeeded: sum.Succeeded, Failed: failed, Stats: node.StatsView(sum.Stats), Millis: time.Since(start).Milliseconds()}
}

// syncRound is a sync asked for (internal/syncround): a round with every
// partner, the wait for the arbiter's decisions, the new sync errors.
func (a *Agent) syncRound(ctx context.Context, rp *replica, wait time.Duration) api.Summary {
	return rp.syncer.Run(ctx, rp.engine, wait, func(ctx context.Context) api.Summary { return a.runSync(ctx, rp) })
}

// replicaHost is the sync routes' Replica (internal/httpapi).
type replicaHost struct{ a *Agent }

func (h replicaHost) SyncNow(ctx context.Context, wait time.Duration) (api.Summary, error) {
	v, err := h.a.with(func(rp *replica) (any, error) {
		rp.engine.ForceReconcile() // a sync asked for re-evaluates the offline profile too
		return h.a.syncRound(ctx, rp, wait), nil
	})
	if err != nil {
		return api.Summary{}, err
	}
	return v.(api.Summary), nil
}

func (h replicaHost) SetOnline(on bool) error {
	_, err := h.a.with(func(rp *replica) (any, error) { rp.setOnline(on); return nil, nil })
	return err
}

func (h replicaHost) Reset(ctx context.Context) (any, error) { return h.a.reset(ctx) }

func (rp *replica) setOnline(on bool) {
	rp.engine.SetOnline(on)
	if rp.gossip != nil {
		rp.gossip.SetOnline(on)
	}
	rp.a.log.Info("connectivity", "online", on)
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (a *Agent) status(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		st := map[string]any{}
		st["node"] = rp.node.String()
		st["role"] = a.cfg.Role
		st["cluster_id"] = a.cfg.ClusterID
		st["online"] = rp.engine.Online()
		st["api_addr"] = a.APIAddr()
		st["sync_addr"] = rp.syncLn.Addr().String()
		st["gossip_addr"] = rp.gossipAddr()
		st["hubs"] = nonNil(a.cfg.Hubs)
		st["uptime_s"] = int64(time.Since(a.started).Seconds())
		// Every node that synced with this one, per direction (peers.go;
		// GET /v1/peers adds pending writes and sync errors per peer).
		st["peers"] = rp.book.Rows(rp.engine.Partners(), rp.store, false)
		// Per-table last sync: the last successful session, served or
		// dialed, that exchanged the table (the peer's scope listed it).
		tables, err := rp.store.Tables()
		if err != nil {
			return nil, err
		}
		tj := []map[string]string{}
		for _, t := range tables {
			if t == policyTable || t == errorTable || t == dedupe.Table {
				continue // system tables
			}
			tj = append(tj, map[string]string{"table": t, "last_sync": timeStr(rp.book.TableSync(t)), "policy": string(rp.n.PolicyOf(t))})
		}
		st["tables"] = tj
		if rp.pendingOutboundMeans() {
			st["pending_outbound"] = rp.out.Pending()
			st["pending_outbound_note"] = "local writes not yet known to be held by a hub: counted from the start of the last successful session with a hub; after a restart every earlier write counts until the first such session"
		}
		c := rp.counts()
		st["conflicts"] = c.conflicts
		st["sync_errors"] = c.syncErrors // rejected changes, not retried
		st["overridden"] = c.overridden  // values a policy overrode (lww, client-wins), not retried
		st["parked"] = c.parked
		st["policies"] = a.cfg.Policies
		st["policy_note"] = "a hub arbitrates client-wins and server-wins tables (unless --no-arbiter); sync errors are the changes it rejected (server-wins, permissions), overridden the values lww and client-wins kept out (logged, not alarms); conflicts list the concurrent candidates of a field on manual tables"
		st["feed_head"] = strconv.FormatUint(rp.store.FeedHead(), 10)
		st["encrypted_at_rest"] = rp.store.Encrypted()
		st["insecure"] = config.InsecureSync(&a.cfg) // sync off loopback without mutual TLS (security.go)
		rp.draftStatus(st)                           // drafts.go
		rp.diskStatus(st)                            // compact.go
		a.prog.mu.Lock()
		st["sync"] = map[string]any{"running": a.prog.running > 0, "started": timeStr(a.prog.started), "progress": node.StatsView(a.prog.stats)}
		a.prog.mu.Unlock()
		if rp.gossip != nil {
			alive := 0
			for _, m := range rp.gossip.Members() {
				if m.State.String() == "alive" {
					alive++
				}
			}
			st["gossip_members"] = alive
		}
		return st, nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
