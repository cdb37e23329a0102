package onlineread

import (
	"net/http"
)

// Forward answers a query or view read with online=true (GET
// /v1/tables/{table}/records with query parameters, GET /v1/views and
// /v1/views/{name}): the same request, every parameter but online, made
// on the hub's API and its answer passed through (with "online" and
// "hub_api" added), judged there by this node's read permissions. On a
// hub, local answers it.
func (a *API) Forward(w http.ResponseWriter, r *http.Request, local func() (any, error)) (any, error) {
	base, node, hub, err := a.gate()
	if err != nil {
		return nil, err
	}
	if hub {
		return local()
	}
	q := r.URL.Query()
	q.Del("online")
	p := r.URL.EscapedPath()
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return a.forwardToHub(r.Context(), base, node, p)
}
