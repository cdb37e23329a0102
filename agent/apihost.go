package agent

import (
	"net/http"

	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/ext/metrics"
	"github.com/replicad/replicad/internal/httpapi"
)

// slot is the current replica as every route host reaches it
// (httpapi.Current): the agent's slot, held shared while fn runs.
type slot struct{ a *Agent }

func (s slot) With(fn func(httpapi.Held) (any, error)) (any, error) {
	return s.a.cur.With(func(rp *running) (any, error) {
		return fn(httpapi.Held{Replica: rp.pub, Node: rp.n, Figures: func() httpapi.StatusFigures { return rp.figures() }})
	})
}

// Scrape runs fn on the current replica's figures, not while there is
// none (metrics.Host).
func (s slot) Scrape(fn func(metrics.Replica)) { s.a.cur.Peek(func(rp *running) { fn(rp.figures()) }) }

// coreHost is the core and query routes' host (httpapi.Host): the current
// replica, the system tables' guard, the read rules of a restricted node
// (authz.ReaderOf; readGuard, security.go).
func (a *Agent) coreHost() httpapi.Host {
	return httpapi.Host{Cur: slot{a}, Guard: guardSystemWrite, ReaderOf: func(r *http.Request) httpapi.Reader {
		if rd := authz.ReaderOf(r); rd != nil {
			return rd
		}
		return nil
	}}
}

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
