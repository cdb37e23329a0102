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

// routes is the API's route table: the core routes (internal/httpapi)
// on the current replica, then the extensions' (internal/ext/*).
func (a *Agent) routes() http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	a.queries = httpapi.CoreRoutes{Host: a.coreHost(), Drafts: a.drafts, Online: a.online, Duplicates: dedupe.Conflicts,
		Replica: replicaHost{a}, Status: a.statusRoute(), Feed: a.feed, MaxLiveQueries: a.cfg.MaxLiveQueries,
		MaxParked: a.cfg.Security.Guard.WithDefaults().MaxParked, Log: a.log}.Routes(rt)
	a.drafts.Routes(rt) // internal/ext/drafts
	peers.Routes(rt, hostOf(a, func(rp *running) peers.Replica {
		return peers.Replica{Book: extOf[*peers.Ext](rp).Book, Partners: rp.engine.Partners, Store: rp.store}
	}))
	profiles.NewAPI(hostOf(a, func(rp *running) profiles.Replica {
		return profiles.Replica{Store: rp.store, Clock: rp.clock, Profiles: extOf[*profiles.Ext](rp).State, Scope: rp.engine.Scope, ReadLimit: a.sec.Rules().ReadLimit}
	})).Routes(rt)
	dedupe.NewAPI(hostOf(a, (*running).records)).Routes(rt)
	workflows.NewAPI(hostOf(a, func(rp *running) *workflows.Set { return extOf[*workflows.Ext](rp).Set })).Routes(rt)
	a.debugRoutes(rt) // testing only: agent/debug.go
	if a.cfg.Pprof {  // REPLICAD_PPROF=1
		a.log.Info("profiling endpoints enabled", "env", config.PprofEnv, "path", "/debug/pprof/")
		httpapi.Pprof(rt)
	}
	rt.HandleHTTP("GET /metrics", a.metrics.Handler())
	a.routeOf = rt.Pattern // the metrics' route label
	// No catch-all pattern: a known path under a wrong method is a 405
	// with Allow, anything else a 404 (httpapi/routing.go).
	return rt.Handler(a.cfg.MaxBodyBytes)
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
