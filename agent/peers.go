package agent

import (
	"net/http"

	"github.com/replicad/replicad/replication"
)

// onSession is told of every session's end (replication.Config.OnSession).
func (r *running) onSession(in replication.SessionInfo) {
	r.book.Ended(in)
	r.book.LogSession(in)
	r.a.metrics.Session(in)
}

func (a *Agent) route(r *http.Request) string {
	if a.routeOf == nil {
		return ""
	}
	return a.routeOf(r)
}

// listPeers serves GET /v1/peers: the peer table with each peer's pending
// writes and sync errors.
func (a *Agent) listPeers(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *running) (any, error) {
		return map[string]any{"peers": rp.book.Rows(rp.engine.Partners(), rp.store, true)}, nil
	})
}
