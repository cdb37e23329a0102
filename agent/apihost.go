package agent

import (
	"net/http"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
)

// current is the Host of an extension that serves routes: R, what it
// reads of the current replica (extapi.Current), and the public API's
// request parsing (httpapi.Requests, with the system tables' guard).
type current[R any] struct {
	httpapi.Requests
	a  *Agent
	of func(*running) R
}

func hostOf[R any](a *Agent, of func(*running) R) current[R] {
	return current[R]{Requests: httpapi.Requests{Guard: guardSystemWrite}, a: a, of: of}
}

func (c current[R]) With(fn func(R) (any, error)) (any, error) {
	return c.a.with(func(rp *running) (any, error) { return fn(c.of(rp)) })
}

// records is the replica as the extensions' record routes see it.
func (rp *running) records() extapi.Records { return httpapi.NodeRecords{Node: rp.n} }

// changeFeed is the change feed's source: the current replica's store and
// the agent's notifier (which outlives resets).
type changeFeed struct{ a *Agent }

func (f changeFeed) Read(after uint64, limit int) ([]api.Change, uint64, error) {
	rp, err := f.a.cur.Acquire()
	if err != nil {
		return nil, 0, err
	}
	defer f.a.cur.RUnlock()
	return httpapi.StoreChanges(rp.store, after, limit)
}

func (f changeFeed) Wait() <-chan struct{} { return f.a.feed.Wait() }

func (f changeFeed) Closed() bool { return f.a.feed.Closed() }

// coreHost is the core routes' Core (internal/httpapi): the current
// replica's node, the system tables' guard, the hub API's read rules.
type coreHost struct{ a *Agent }

func (h coreHost) With(fn func(*node.Node) (any, error)) (any, error) {
	return h.a.with(func(rp *running) (any, error) { return fn(rp.n) })
}

// GuardWrite refuses (403) an API write to a system table (systables.go).
func (coreHost) GuardWrite(table string) error { return guardSystemWrite(table) }

// Reader is the restricted node r reads for (online_readperm.go).
func (coreHost) Reader(r *http.Request) httpapi.Reader {
	if rd := authz.ReaderOf(r); rd != nil {
		return rd
	}
	return nil
}
