package agent

import (
	"context"
	"net/http"

	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/replica"
)

// queryRoutes adds the queries of GET /v1/tables/{table}/records (its
// listing without query parameters stays modes.List's), the views (GET
// /v1/views, /v1/views/{name}) and their live form (internal/httpapi:
// query.go, views.go, watch.go).
func (a *Agent) queryRoutes(rt *httpapi.Router, modes httpapi.Modes) {
	a.queries = httpapi.NewQueries(queryHost{coreHost{a}}, a.cfg.MaxLiveQueries)
	a.queries.Online = a.online // online=true: internal/ext/onlineread
	rt.Handle("GET /v1/tables/{table}/records", a.queries.List(modes))
	rt.Handle("GET /v1/views", a.queries.ListViews)
	rt.Handle("GET /v1/views/{name}", a.queries.View)
}

// queryHost is the query routes' QueryCore: the core routes' Core with
// the current replica's live queries, views and device attributes.
type queryHost struct{ coreHost }

// Reader is the restricted node r reads for, which tells the fields it
// may read (its read limit).
func (h queryHost) Reader(r *http.Request) httpapi.Reader {
	if rd := authz.ReaderOf(r); rd != nil {
		return fieldReader{rd}
	}
	return nil
}

type fieldReader struct{ *authz.Reader }

func (f fieldReader) FieldAllowed(table, field string) bool {
	return f.Limit.FieldAllowed(table, field)
}

// WatchFrom keeps q live on the current replica; a reset or a store
// recovery closes the replica, which ends the watch.
func (h queryHost) WatchFrom(ctx context.Context, q replica.Query, lastEventID string) (<-chan replica.Event, error) {
	var ch <-chan replica.Event
	err := h.a.withReplica(func(r *replica.Replica) (err error) {
		ch, err = r.WatchFrom(ctx, q, lastEventID)
		return err
	})
	return ch, err
}

// DeviceAttrs returns the attributes device.* reads in a query: the
// replica's (replica.Replica.DeviceAttrs).
func (h queryHost) DeviceAttrs() map[string]string {
	var out map[string]string
	h.a.withReplica(func(r *replica.Replica) error { out = r.DeviceAttrs(); return nil })
	return out
}

// Views returns the views the hubs declared (none while the replica is
// being reset).
func (h queryHost) Views() []replica.View {
	var out []replica.View
	h.a.withReplica(func(r *replica.Replica) error { out = r.Views(); return nil })
	return out
}
