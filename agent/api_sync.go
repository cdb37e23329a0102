package agent

import (
	"context"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
)

// --- sync, connectivity, status ---

// runSync runs a round with every partner (syncround.Progress: the
// status's figures of the syncs in progress), counted in the metrics.
func (a *Agent) runSync(ctx context.Context, rp *running) api.Summary {
	sum, ok := a.prog.Round(ctx, rp.engine)
	result := "ok"
	if !ok {
		result = "failed"
	}
	a.metrics.SyncRound(result) // bytes: counted per session (metrics.session)
	return sum
}

// syncRound is a sync asked for (internal/syncround): a round with every
// partner, the wait for the arbiter's decisions, the new sync errors.
func (a *Agent) syncRound(ctx context.Context, rp *running, wait time.Duration) api.Summary {
	return rp.syncer.Run(ctx, rp.engine, wait, func(ctx context.Context) api.Summary { return a.runSync(ctx, rp) })
}

// replicaHost is the sync routes' Replica (internal/httpapi).
type replicaHost struct{ a *Agent }

func (h replicaHost) SyncNow(ctx context.Context, wait time.Duration) (api.Summary, error) {
	v, err := h.a.with(func(rp *running) (any, error) {
		rp.engine.ForceReconcile() // a sync asked for re-evaluates the offline profile too
		return h.a.syncRound(ctx, rp, wait), nil
	})
	if err != nil {
		return api.Summary{}, err
	}
	return v.(api.Summary), nil
}

func (h replicaHost) SetOnline(on bool) error {
	_, err := h.a.with(func(rp *running) (any, error) { rp.setOnline(on); return nil, nil })
	return err
}

func (h replicaHost) Reset(ctx context.Context) (any, error) { return h.a.reset(ctx) }

func (rp *running) setOnline(on bool) {
	rp.engine.SetOnline(on)
	if rp.gossip != nil {
		rp.gossip.SetOnline(on)
	}
	rp.a.log.Info("connectivity", "online", on)
}

// figures are what the status and the metrics report of the replica
// beyond its store (httpapi.Figures).
func (rp *running) figures() httpapi.Figures {
	return httpapi.Figures{Node: rp.n, Eng: rp.engine, Gossip: rp.gossip, SyncLn: rp.syncLn, Out: rp.out, Book: extOf[*peers.Ext](rp).Book,
		Hub: rp.a.cfg.Role == "hub", Hubs: rp.a.cfg.Hubs, Duplicates: dedupe.Conflicts,
		HubAPIOf: func() string { return rp.a.hubAPIBase(rp) }, SyncState: rp.a.prog.State, Log: rp.a.log,
		WorkflowsOf: extOf[*workflows.Ext](rp).Views, OpenOf: dedupe.Open}
}

// statusRoute is GET /v1/status (internal/httpapi) with this agent's
// configuration; the system tables are left out of its tables.
func (a *Agent) statusRoute() httpapi.StatusRoute {
	return httpapi.StatusRoute{Cur: slot{a}, APIAddr: a.APIAddr, Role: a.cfg.Role, ClusterID: a.cfg.ClusterID, Hubs: a.cfg.Hubs, Policies: a.cfg.Policies,
		Insecure: config.InsecureSync(&a.cfg), // security.go
		Started:  a.started,
		System:   func(t string) bool { return t == node.PolicyTable || t == node.ErrorTable || t == dedupe.Table }}
}
