package agent

import (
	"net/http"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/drafts"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
)

// apiHost is what the extensions that serve routes share of the public
// API: its record names, PUT bodies and page limits, and the current
// replica.
type apiHost struct{ a *Agent }

func (h apiHost) RecordNames(r *http.Request) (string, string, error) { return names(r) }

// PutFields decodes a PUT body; check (nil: none) judges the number of
// fields before their values are converted.
func (h apiHost) PutFields(r *http.Request, check func(n int) error) ([]crdt.FieldValue, bool, error) {
	var body httpapi.PutBody
	if err := decodeBody(r, &body); err != nil {
		return nil, false, err
	}
	if check != nil {
		if err := check(len(body.Fields)); err != nil {
			return nil, body.Fields != nil, err
		}
	}
	if body.Fields == nil {
		return nil, false, nil
	}
	fields, err := body.Values()
	return fields, true, err
}

func (h apiHost) DecodeBody(r *http.Request, v any) error { return decodeBody(r, v) }

func (h apiHost) PageLimit(r *http.Request) (int, error) {
	return httpapi.IntParam(r, "limit", defaultPageLimit, maxPageLimit)
}

func (h apiHost) With(fn func(drafts.Replica) (any, error)) (any, error) {
	return h.a.with(func(rp *running) (any, error) { return fn(apiReplica{rp.n, rp}) })
}

// apiReplica is a replica as the extensions that serve routes see it: the
// node, and the public API's record look-up and view.
type apiReplica struct {
	*node.Node
	rp *running
}

func (p apiReplica) Existing(table, id string) (*crdt.Record, error) { return p.rp.existing(table, id) }

func (p apiReplica) RecordView(table, id string, rec *crdt.Record) api.Record {
	return p.rp.recordView(table, id, rec)
}

// changeFeed is the change feed's source: the current replica's store and
// the agent's notifier (which outlives resets).
type changeFeed struct{ a *Agent }

func (f changeFeed) Read(after uint64, limit int) ([]api.Change, uint64, error) {
	rp, err := f.a.acquire()
	if err != nil {
		return nil, 0, err
	}
	defer f.a.mu.RUnlock()
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
