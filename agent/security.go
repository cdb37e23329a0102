package agent

import (
	"net/http"

	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/httpapi"
)

// readGuard applies the requesting node's read rules to the API of a hub
// with read rules (authz.Security.APIReads): a device's online reads are
// judged there by its read rules, as sync judges what it sends it.
func (a *Agent) readGuard(next http.Handler) http.Handler {
	return a.sec.APIReads(next, a.cfg.Role == "hub", onlineread.NodeHeader, a.writeError)
}

// security is the agent's loaded security state (internal/ext/authz:
// the credentials of internal/credentials, the rules and grants).
type security = authz.Security

// apiHandler adds the security endpoints to h, then puts in front of
// everything the checks of httpapi.Guard (cross-site state changes, bodies
// over the limit), the read rules of restricted nodes (readGuard)
// and, first of all when a token is required, the bearer check: nothing
// answers what it would do before the request is authenticated.
func apiHandler(s *security, a *Agent, h http.Handler) http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	s.Routes(rt, httpapi.DecodeBody)                               // internal/ext/authz
	root := http.MaxBytesHandler(rt.Before(h), a.cfg.MaxBodyBytes) // the rest (and their 405s) are h's
	return a.guard.Bearer(a.guard.Sites(a.readGuard(root)), s.Token)
}
