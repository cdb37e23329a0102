package agent

import "github.com/replicad/replicad/internal/httpapi"

// queryRoutes adds the queries of GET /v1/tables/{table}/records (its
// listing without query parameters stays modes.List's), the views (GET
// /v1/views, /v1/views/{name}) and their live form (internal/httpapi:
// query.go, views.go, watch.go), on the current replica (httpapi.Host).
func (a *Agent) queryRoutes(rt *httpapi.Router, modes httpapi.Modes) {
	a.queries = httpapi.NewQueries(a.coreHost(), a.cfg.MaxLiveQueries)
	a.queries.Online = a.online // online=true: internal/ext/onlineread
	rt.Handle("GET /v1/tables/{table}/records", a.queries.List(modes))
	rt.Handle("GET /v1/views", a.queries.ListViews)
	rt.Handle("GET /v1/views/{name}", a.queries.View)
}
