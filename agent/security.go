package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/credentials"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// security is the agent's loaded security state: the credentials (token,
// TLS, keyring: internal/credentials) and the authorization's rules and
// grants (internal/ext/authz).
type security struct {
	*credentials.Credentials
	cfg   Config
	log   hclog.Logger
	perms *authz.Rules // nil: no rules
	// grants are the verified grants of _replicad_grants (with TLS).
	grants *authz.Grants
	// filters judge device peers' writes by the grants (with TLS).
	filters *authz.PeerFilters
}

func newSecurity(cfg Config, log hclog.Logger) (*security, error) {
	s := &security{cfg: cfg, log: log.Named("security")}
	c, err := credentials.Load(cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.Credentials = c
	if c.TLS != nil {
		s.grants = authz.NewGrants(c.TLS, s.log)
		s.filters = authz.NewPeerFilters(s.grants, cfg.Security.PeerRelay, s.log)
	}
	perms, err := authz.Compile(cfg.Security.Permissions)
	if err != nil {
		return nil, err
	}
	s.perms = perms
	return s, nil
}

// engine sets the permission filter on remote writes and, with TLS, the
// grants' filter of device peers' writes.
func (s *security) engine(c *replication.Config, r *running) {
	if s == nil {
		return
	}
	isHub := s.cfg.Role == "hub"
	if isHub {
		// A hub takes the system tables' records whole only from hubs
		// (systables.go).
		c.Local.AdmitRecord = r.sys.AdmitRecord
	}
	if s.perms != nil || isHub {
		// The write permissions, and on a hub the system tables' writers
		// (systables.go).
		var sys func(replication.Peer, *crdt.Write) string
		if isHub {
			sys = r.sys.Judge
		}
		r.enf = authz.NewEnforcer(r.host("authz"), s.perms, sys)
		c.Local.Admit = r.enf.Admit // Hook and Applied: hooks.go
	}
	if s.TLS == nil {
		return
	}
	// Writes from device peers are judged by their origins' grants
	// (authz.PeerFilters); gossip pushes, authenticated only by the gossip key,
	// are hints to sync over an authenticated session.
	s.grants.SetStore(r.store)
	c.Local.Filter = func(p replication.Peer) *replication.WriteFilter {
		f := s.filters.For(p, isHub)
		if f != nil {
			logRefused := f.OnRefused
			f.OnRefused = func(w *crdt.Write, why string) {
				r.a.metrics.PeerRefused()
				if logRefused != nil {
					logRefused(w, why)
				}
			}
		}
		return f
	}
	// PushHints, Dial and Authenticate: the replica's, from the TLS
	// identity given through the seam (replica/tls.go). The grants'
	// cache is invalidated by an observer of applied batches (hooks.go).
}

// startSecurity, before any session: carries out the permission
// write-backs a crash left queued, publishes a hub's grants, and keeps
// them re-signed.
func (r *running) startSecurity(ctx context.Context) {
	if r.enf != nil {
		if err := r.enf.Replay(); err != nil {
			r.a.log.Error("permission: write-backs left queued", "error", err)
		}
	}
	s := r.a.sec
	if s == nil || s.TLS == nil || r.a.cfg.Role != "hub" {
		return
	}
	g := r.grants()
	if err := g.Publish(time.Now()); err != nil {
		r.a.log.Error("publishing the grants failed", "error", err)
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); g.Watch(ctx.Done()) }()
}

// apiHandler adds the security endpoints to h, then puts in front of
// everything the checks of httpapi.Guard (cross-site state changes, bodies
// over the limit), the read rules of restricted nodes (online_readperm.go)
// and, first of all when a token is required, the bearer check: nothing
// answers what it would do before the request is authenticated.
func (s *security) apiHandler(a *Agent, h http.Handler) http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	rt.Handle("GET /v1/security", func(w http.ResponseWriter, r *http.Request) (any, error) { return s.Status(), nil })
	rt.Handle("GET /v1/grants", func(w http.ResponseWriter, r *http.Request) (any, error) { return s.grantStatus(), nil })
	rt.HandleHTTP("POST /v1/gossip/keys", http.MaxBytesHandler(rt.Func(func(w http.ResponseWriter, r *http.Request) (any, error) {
		var body api.GossipKeyRequest
		if err := decodeBody(r, &body); err != nil {
			return nil, err
		}
		return s.Rotate(body)
	}), a.cfg.MaxBodyBytes))
	root := rt.Before(h) // the rest (and their 405s) are h's
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

// SecurityStatus (GET /v1/security), TLSStatus and GossipStatus are
// declared in package api, with the API's other bodies.
type (
	SecurityStatus = api.SecurityStatus
	TLSStatus      = api.TLSStatus
	GossipStatus   = api.GossipStatus
)
