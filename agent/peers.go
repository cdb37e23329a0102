package agent

import (
	"errors"
	"net/http"
	"time"

	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// onSession is told of every session's end (replication.Config.OnSession).
func (r *running) onSession(in replication.SessionInfo) {
	r.book.Ended(in)
	r.book.LogSession(in)
	r.a.metrics.Session(in)
}

// flushPeers writes the peer table to the store every peers.FlushEvery
// until done (close writes the rest).
func (r *running) flushPeers(done <-chan struct{}) {
	t := time.NewTicker(peers.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := r.book.Flush(); err != nil && !errors.Is(err, store.ErrClosed) {
				r.a.log.Warn("writing the peer table", "error", err)
			}
		}
	}
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
