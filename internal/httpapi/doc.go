// Package httpapi is the agent's HTTP API machinery: the router whose
// handlers return a value (answered as JSON) or an error (answered as a
// JSON error with its status), the request-body decoding that names what
// is wrong in the user's words, the exact JSON values, the 405/404
// answers, the status page and Go's profiling endpoints, and the core
// routes (records and their modes, conflicts, sync errors, parked writes,
// sync, connectivity, reset, compaction, status, change feed; their
// table CoreRoutes) over the current replica as the assembly hands it
// (Current; Host is the Core and QueryCore over it, current.go) and the
// narrow Replica of the sync routes, and the queries, views and live
// queries (query.go, views.go, watch.go). Only the agent
// (the assembly) imports this package: an extension that serves routes
// declares the one-method interface it adds them through (Handle), which
// a Router satisfies.
package httpapi
