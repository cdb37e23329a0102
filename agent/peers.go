package agent

import (
	"github.com/replicad/replicad/replication"
)

// onSession is told of every session's end (replication.Config.OnSession).
func (r *running) onSession(in replication.SessionInfo) {
	r.book.Ended(in)
	r.book.LogSession(in)
	r.a.metrics.Session(in)
}
