package httpapi

import (
	"net/http"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// CoreRoutes is the core routes' table: the records in their modes, the
// queries and views, conflicts, sync errors, sync, connectivity, reset,
// compaction, status, the change feed and the parked writes, on the
// current replica (Host), with what the assembly hands them of the
// extensions and of its configuration.
type CoreRoutes struct {
	Host Host
	// Drafts and Online serve ?draft and ?online (internal/ext/drafts,
	// onlineread).
	Drafts interface {
		PutDraft(w http.ResponseWriter, r *http.Request) (any, error)
		GetDrafted(w http.ResponseWriter, r *http.Request) (any, error)
	}
	Online interface {
		GetRecord(w http.ResponseWriter, r *http.Request) (any, error)
		ListRecords(w http.ResponseWriter, r *http.Request) (any, error)
		Forward(w http.ResponseWriter, r *http.Request, local func() (any, error)) (any, error)
	}
	// Duplicates lists the suspected duplicates as conflicts.
	Duplicates func(st *store.Store) ([]api.Conflict, error)
	// Replica is the sync routes' replica (sync, connectivity, reset).
	Replica Replica
	Status  StatusRoute
	// Feed is the change feed's notifier (it outlives resets).
	Feed           *node.Feed
	MaxLiveQueries int
	MaxParked      int // per origin
	Log            hclog.Logger
}

// Routes adds the core routes to rt. It returns the queries, whose live
// queries end at Close (shutdown).
func (c CoreRoutes) Routes(rt *Router) *Queries {
	modes := Modes{Records: Records{Core: c.Host}, Drafts: c.Drafts, Online: c.Online} // ?draft, ?online
	rt.Handle("PUT /v1/tables/{table}/records/{id}", modes.Put)
	rt.Handle("GET /v1/tables/{table}/records/{id}", modes.Get)
	rt.Handle("DELETE /v1/tables/{table}/records/{id}", modes.Delete)
	// GET /v1/tables/{table}/records: its listing without query
	// parameters stays modes.List's; the views and their live form.
	qs := NewQueries(c.Host, c.MaxLiveQueries)
	qs.Online = c.Online
	rt.Handle("GET /v1/tables/{table}/records", qs.List(modes))
	rt.Handle("GET /v1/views", qs.ListViews)
	rt.Handle("GET /v1/views/{name}", qs.View)
	conflicts := Conflicts{Core: c.Host, Duplicates: c.Duplicates}
	rt.Handle("GET /v1/conflicts", conflicts.Get)
	rt.Handle("POST /v1/conflicts/{table}/{id}/{field}", conflicts.Resolve)
	rt.Handle("GET /v1/sync-errors", SyncErrors{Core: c.Host}.List)
	rt.Handle("POST /v1/sync-errors/{eid}/retry", SyncErrors{Core: c.Host}.Retry)
	sy := Sync{Core: c.Host, Replica: c.Replica, Log: c.Log}
	rt.Handle("POST /v1/sync", sy.Now)
	rt.Handle("POST /v1/connectivity", sy.Connectivity)
	rt.Handle("POST /v1/reset", sy.Reset)
	rt.Handle("POST /v1/compact", sy.Compact)
	rt.Handle("GET /v1/status", c.Status.Get)
	rt.Handle("GET /v1/changes", Changes(CurrentFeed{Cur: c.Host.Cur, Notify: c.Feed}))
	parked := Parked{Core: c.Host, MaxPerOrigin: c.MaxParked, Notify: c.Feed.Notify, Log: c.Log}
	rt.Handle("GET /v1/parked", parked.List)
	rt.Handle("POST /v1/parked/{origin}/{seq}/release", parked.Release)
	StatusPage(rt)
	return qs
}
