package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// SyncErrors serves GET /v1/sync-errors and POST
// /v1/sync-errors/{eid}/retry.
type SyncErrors struct{ Core Core }

// List pages the sync errors logged here (?limit, ?after, ?kind).
func (se SyncErrors) List(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
	if err != nil {
		return nil, err
	}
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, Errorf(http.StatusBadRequest, "after=%q: want an error id", s)
		}
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != node.KindRejected && kind != node.KindOverridden {
		return nil, Errorf(http.StatusBadRequest, "kind=%q: want %s or %s", kind, node.KindRejected, node.KindOverridden)
	}
	return se.Core.With(func(n *node.Node) (any, error) {
		out := make([]api.SyncError, 0)
		for len(out) < limit {
			es, err := n.Store().ListSyncErrors(after, limit)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if v := node.SyncErrorView(e); (kind == "" || v.Kind == kind) && len(out) < limit {
					out = append(out, v)
				}
			}
			if len(es) < limit {
				break
			}
			after = es[len(es)-1].ID
		}
		return map[string]any{"errors": out}, nil
	})
}

// Retry re-applies a sync error's losing values as a new local write,
// and marks the error retried.
func (se SyncErrors) Retry(w http.ResponseWriter, r *http.Request) (any, error) {
	eid, err := strconv.ParseUint(r.PathValue("eid"), 10, 64)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "bad sync-error id %q", r.PathValue("eid"))
	}
	return se.Core.With(func(n *node.Node) (any, error) {
		e, err := n.Store().GetSyncError(eid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, Errorf(http.StatusNotFound, "no sync error %d", eid)
		}
		if err != nil {
			return nil, err
		}
		if !store.ValidTable(e.Table) || !store.ValidID(e.Record) {
			return nil, Errorf(http.StatusConflict, "sync error %d names no valid record", eid)
		}
		if err := se.Core.GuardWrite(e.Table); err != nil {
			return nil, err
		}
		var fields []crdt.FieldValue
		for name, v := range e.Losing {
			if err := crdt.Value(v).Validate(); err != nil {
				return nil, Errorf(http.StatusConflict, "sync error %d: losing value of %q does not decode", eid, name)
			}
			fields = append(fields, crdt.FieldValue{Name: name, Value: crdt.Value(v)})
		}
		if len(fields) == 0 {
			return nil, Errorf(http.StatusConflict, "sync error %d holds no losing value to re-apply", eid)
		}
		res, err := n.Write(e.Table, e.Record, fields, false, nil)
		if err != nil {
			return nil, err
		}
		if err := n.Store().MarkSyncErrorRetried(eid); err != nil {
			return nil, err
		}
		return n.View(e.Table, e.Record, res.Record), nil
	})
}
