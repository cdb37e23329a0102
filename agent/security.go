package agent

import (
	"net/http"

	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/secure"
)

// security is the agent's loaded security state (internal/ext/authz:
// the credentials of internal/credentials, the rules and grants).
type security = authz.Security

// apiHandler adds the security endpoints to h, then puts in front of
// everything the checks of httpapi.Guard (cross-site state changes, bodies
// over the limit), the read rules of restricted nodes (online_readperm.go)
// and, first of all when a token is required, the bearer check: nothing
// answers what it would do before the request is authenticated.
func apiHandler(s *security, a *Agent, h http.Handler) http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	s.Routes(rt, httpapi.DecodeBody)                               // internal/ext/authz
	root := http.MaxBytesHandler(rt.Before(h), a.cfg.MaxBodyBytes) // the rest (and their 405s) are h's
	guarded := a.guard.Sites(a.readGuard(root))
	if s.Token == "" {
		return guarded
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure.RequireBearer(guarded, s.Token, func(r *http.Request, reason string) {
			w.Header().Set("Connection", "close") // nothing more on this connection
			a.guard.LogRefused(r, reason)
		}).ServeHTTP(w, r)
	})
}
