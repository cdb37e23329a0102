package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/ext/profiles"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
)

// apiError answers an API error (httpapi.Router's onError): a client
// error is counted, any other logged.
func (a *Agent) apiError(code int, err error) {
	if code >= 400 && code < 500 {
		a.metrics.Rejected(code)
	} else {
		a.log.Error("api request failed", "error", err)
	}
}

// writeError answers err as a JSON error.
func (a *Agent) writeError(w http.ResponseWriter, err error) { httpapi.WriteError(w, err, a.apiError) }

// with runs fn on the current replica (replicaslot.Slot.With).
func (a *Agent) with(fn func(r *running) (any, error)) (any, error) { return a.cur.With(fn) }

func (a *Agent) routes() http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	modes := httpapi.Modes{Records: a.records(), Drafts: a.drafts, Online: a.online} // ?draft, ?online
	rt.Handle("PUT /v1/tables/{table}/records/{id}", modes.Put)
	rt.Handle("GET /v1/tables/{table}/records/{id}", modes.Get)
	rt.Handle("DELETE /v1/tables/{table}/records/{id}", modes.Delete)
	// GET /v1/tables/{table}/records (queries), the views: queries.go
	a.queryRoutes(rt, modes)
	a.drafts.Routes(rt) // internal/ext/drafts
	rt.Handle("GET /v1/conflicts", a.conflicts().Get)
	rt.Handle("POST /v1/conflicts/{table}/{id}/{field}", a.conflicts().Resolve)
	rt.Handle("GET /v1/sync-errors", httpapi.SyncErrors{Core: a.coreHost()}.List)
	rt.Handle("POST /v1/sync-errors/{eid}/retry", httpapi.SyncErrors{Core: a.coreHost()}.Retry)
	sy := httpapi.Sync{Core: a.coreHost(), Replica: replicaHost{a}, Log: a.log}
	rt.Handle("POST /v1/sync", sy.Now)
	rt.Handle("POST /v1/connectivity", sy.Connectivity)
	rt.Handle("GET /v1/status", a.statusRoute().Get)
	peers.Routes(rt, hostOf(a, func(rp *running) peers.Replica {
		return peers.Replica{Book: extOf[*peers.Ext](rp).Book, Partners: rp.engine.Partners, Store: rp.store}
	}))
	rt.Handle("GET /v1/changes", httpapi.Changes(httpapi.CurrentFeed{Cur: slot{a}, Notify: a.feed}))
	rt.Handle("POST /v1/reset", sy.Reset)
	rt.Handle("POST /v1/compact", sy.Compact)
	parked := httpapi.Parked{Core: a.coreHost(), MaxPerOrigin: a.cfg.Security.Guard.WithDefaults().MaxParked, Notify: a.feed.Notify, Log: a.log}
	rt.Handle("GET /v1/parked", parked.List)
	profiles.NewAPI(hostOf(a, func(rp *running) profiles.Replica {
		return profiles.Replica{Store: rp.store, Clock: rp.clock, Profiles: extOf[*profiles.Ext](rp).State, Scope: rp.engine.Scope, ReadLimit: a.sec.Rules().ReadLimit}
	})).Routes(rt)
	rt.Handle("POST /v1/parked/{origin}/{seq}/release", parked.Release)
	a.debugRoutes(rt) // testing only: agent/debug.go
	if a.cfg.Pprof {  // REPLICAD_PPROF=1
		a.log.Info("profiling endpoints enabled", "env", config.PprofEnv, "path", "/debug/pprof/")
		httpapi.Pprof(rt)
	}
	dedupe.NewAPI(hostOf(a, (*running).records)).Routes(rt) // internal/ext/dedupe, workflows
	workflows.NewAPI(hostOf(a, func(rp *running) *workflows.Set { return extOf[*workflows.Ext](rp).Set })).Routes(rt)
	rt.HandleHTTP("GET /metrics", a.metrics.Handler())
	httpapi.StatusPage(rt)
	a.routeOf = rt.Pattern // the metrics' route label
	// No catch-all pattern: a known path under a wrong method is a 405
	// with Allow, anything else a 404 (httpapi/routing.go).
	return rt.Handler(a.cfg.MaxBodyBytes)
}

// records serves the record routes (internal/httpapi).
func (a *Agent) records() httpapi.Records { return httpapi.Records{Core: a.coreHost()} }

// --- conflicts ---

// conflicts serves the conflict routes (internal/httpapi), with the
// suspected duplicates (internal/ext/dedupe).
func (a *Agent) conflicts() httpapi.Conflicts {
	return httpapi.Conflicts{Core: a.coreHost(), Duplicates: dedupe.Conflicts}
}

// --- reset ---

// reset clears the local replica and resyncs it: the store is closed and
// moved aside (<data-dir>/reset-<unix-ms>/), a fresh store with a new node
// id is opened, and a sync round runs. Writes not yet pushed are in the
// moved-aside store only.
func (a *Agent) reset(ctx context.Context) (any, error) {
	var moved string
	_, err := a.cur.Replace(func() (*running, error) {
		moved = fmt.Sprintf("%s/reset-%d", a.cfg.DataDir, time.Now().UnixMilli())
		if err := os.Rename(a.storeDir(), moved); err != nil {
			return nil, fmt.Errorf("moving the store aside: %w", err)
		}
		return a.startReplica()
	})
	if err != nil {
		a.log.Error("reset failed; restart the agent", "error", err)
		return nil, err
	}
	a.feed.Notify()
	a.log.Info("replica reset", "moved_to", moved)
	return a.with(func(rp *running) (any, error) {
		sum := a.runSync(ctx, rp)
		return map[string]any{"node": rp.node.String(), "moved_to": moved, "sync": sum}, nil
	})
}
