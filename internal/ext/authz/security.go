package authz

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/credentials"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Security is a node's loaded security state as the assembly wires it:
// its credentials (token, TLS, keyring: internal/credentials) and its
// authorization's rules and grants. It outlives the replicas a reset
// replaces; Wire and Start apply it to each.
type Security struct {
	*credentials.Credentials
	cfg   config.Config
	log   hclog.Logger
	perms *Rules // nil: no rules
	// Grants are the verified grants of GrantTable (with TLS; else nil).
	Grants *Grants
	// filters judge device peers' writes by the grants (with TLS).
	filters *PeerFilters
}

// NewSecurity loads the credentials cfg names and compiles its
// permission rules; log is the agent's.
func NewSecurity(cfg config.Config, log hclog.Logger) (*Security, error) {
	s := &Security{cfg: cfg, log: log.Named("security")}
	c, err := credentials.Load(cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.Credentials = c
	if c.TLS != nil {
		s.Grants = NewGrants(c.TLS, s.log)
		s.filters = NewPeerFilters(s.Grants, cfg.Security.PeerRelay, s.log)
	}
	if s.perms, err = Compile(cfg.Security.Permissions); err != nil {
		return nil, err
	}
	return s, nil
}

// Rules returns the compiled permission rules (nil: none).
func (s *Security) Rules() *Rules {
	if s == nil {
		return nil
	}
	return s.perms
}

// Host is what the enforcer needs of the node it runs on.
type Host interface {
	extapi.Node
	extapi.Decider
}

// Wire sets on c what judges remote writes: on a hub, the system tables'
// records taken whole from hubs only and their writers judged (sys); the
// write permissions, with a hub's sys, applied by one enforcer
// (node.Enforcer, returned, built on h; nil without rules off a hub);
// with TLS, device peers' writes judged by their origins' grants
// (refused, if set, counts each refusal). The replica keeps the grants'
// cache on st.
func (s *Security) Wire(c *replication.Config, h Host, st *store.Store, sys *node.SysJudge, refused func()) *node.Enforcer {
	isHub := s.cfg.Role == "hub"
	if isHub {
		c.Local.AdmitRecord = sys.AdmitRecord
	}
	var enf *node.Enforcer
	if s.perms != nil || isHub {
		perms := s.perms
		enf = node.NewEnforcer(h, func(from replication.Peer, w *crdt.Write) (string, bool) {
			if reason := perms.Check(w); reason != "" {
				return reason, false
			}
			if isHub {
				return sys.Judge(from, w), true
			}
			return "", false
		})
		c.Local.Admit = enf.Admit // Hook and Applied: the assembly's hooks
	}
	if s.TLS == nil {
		return enf
	}
	// Writes from device peers are judged by their origins' grants
	// (PeerFilters); gossip pushes, authenticated only by the gossip
	// key, are hints to sync over an authenticated session (the replica
	// sets PushHints with TLS).
	s.Grants.SetStore(st)
	c.Local.Filter = func(p replication.Peer) *replication.WriteFilter {
		f := s.filters.For(p, isHub)
		if f != nil && refused != nil {
			logRefused := f.OnRefused
			f.OnRefused = func(w *crdt.Write, why string) {
				refused()
				if logRefused != nil {
					logRefused(w, why)
				}
			}
		}
		return f
	}
	return enf
}

// HasTLS reports whether this node has a TLS identity.
func (s *Security) HasTLS() bool { return s != nil && s.Credentials.HasTLS() }

// Publisher returns the publisher on h of this hub's grants of rules
// (nothing is published without TLS or off a hub).
func (s *Security) Publisher(h PublishHost, rules []config.Permission) *Publisher {
	if s == nil || s.TLS == nil {
		return NewPublisher(nil, nil, nil, "", nil, 0)
	}
	return NewPublisher(h, s.TLS, s.Grants, s.cfg.ClusterID, rules, s.GrantValidity())
}

// Start, before any session: carries out the permission write-backs a
// crash left queued (enf, if any), publishes a hub's grants with g, and
// keeps them re-signed in a goroutine of wg until ctx is done.
func (s *Security) Start(ctx context.Context, enf *node.Enforcer, g *Publisher, wg *sync.WaitGroup) {
	if enf != nil {
		if err := enf.Replay(); err != nil {
			s.log.Error("permission: write-backs left queued", "error", err)
		}
	}
	if s == nil || s.TLS == nil || s.cfg.Role != "hub" {
		return
	}
	if err := g.Publish(time.Now()); err != nil {
		s.log.Error("publishing the grants failed", "error", err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); g.Watch(ctx.Done()) }()
}

// Reads returns a replica's read rules, on h: a hub's configured rules,
// a device's hub-signed grants.
func (s *Security) Reads(h ReadHost) *Reads {
	var grants *Grants
	if s != nil {
		grants = s.Grants
	}
	return NewReads(h, s != nil && s.cfg.Role == "hub", s.Rules(), grants)
}

// GrantRules returns the write and read rules that a hub of this cluster
// granted node (Grants.Rules): ok is false when no valid grant names
// node, or this node has no TLS.
func (s *Security) GrantRules(node hlc.NodeID, now time.Time) (*Rules, bool) {
	if s == nil || s.Grants == nil {
		return nil, false
	}
	return s.Grants.Rules(node, now)
}

// GrantStatus lists the grants of GrantTable as this node judges them
// (GET /v1/grants; TLS only, an empty list otherwise).
func (s *Security) GrantStatus() []api.GrantStatus {
	if s == nil || s.Grants == nil {
		return []api.GrantStatus{}
	}
	return s.Grants.Status()
}

// Routes adds GET /v1/security, GET /v1/grants and POST /v1/gossip/keys
// (its body read by decode).
func (s *Security) Routes(rt extapi.Registrar, decode func(r *http.Request, v any) error) {
	rt.Handle("GET /v1/security", func(http.ResponseWriter, *http.Request) (any, error) { return s.Status(), nil })
	rt.Handle("GET /v1/grants", func(http.ResponseWriter, *http.Request) (any, error) { return s.GrantStatus(), nil })
	rt.Handle("POST /v1/gossip/keys", func(_ http.ResponseWriter, r *http.Request) (any, error) {
		var body api.GossipKeyRequest
		if err := decode(r, &body); err != nil {
			return nil, err
		}
		return s.Rotate(body)
	})
}

// ClientTLS is the TLS configuration to reach host's API over mutual TLS
// (a device's online reads), nil without a TLS identity.
func (s *Security) ClientTLS(host string) *tls.Config {
	if !s.HasTLS() {
		return nil
	}
	return s.TLS.Client(host)
}

// APIReads applies the requesting node's read rules (named by header) to
// the API of a hub with read rules (ReadGuard); elsewhere it passes
// requests through.
func (s *Security) APIReads(next http.Handler, hub bool, header string, fail func(http.ResponseWriter, error)) http.Handler {
	if !hub || !s.Rules().HasReadRules() {
		return next
	}
	return ReadGuard(next, s.Rules(), header, fail)
}
