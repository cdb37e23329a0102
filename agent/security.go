package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// security is the agent's loaded security state.
type security struct {
	cfg   Config
	log   hclog.Logger
	token string // "" when the API needs none
	tls   *secure.TLS
	perms *authz.Rules // nil: no rules
	// grants are the verified grants of _replicad_grants (with TLS).
	grants *authz.Grants
	// refusedLog rate-limits the log lines of refused writes per peer.
	refusedLog netguard.KeyedThrottle[hlc.NodeID]

	keyMu   sync.Mutex
	keyring *memberlist.Keyring
}

func newSecurity(cfg Config, log hclog.Logger) (*security, error) {
	s := &security{cfg: cfg, log: log.Named("security")}
	s.refusedLog.Interval = refusedLogInterval
	sc := cfg.Security
	if err := config.CheckInsecure(&cfg); err != nil {
		return nil, err
	}
	if config.InsecureSync(&cfg) {
		s.log.Warn("INSECURE: sync is served off loopback without mutual TLS (--insecure): anyone who reaches "+cfg.SyncAddr+" can claim any node id and role, write in any node's name and read everything; configure tls_ca, tls_cert and tls_key", "sync_addr", cfg.SyncAddr)
	}
	if sc.APIAuth == config.APIAuthToken || !secure.IsLoopback(cfg.APIAddr) {
		tok, err := secure.LoadOrCreateToken(filepath.Join(cfg.DataDir, secure.TokenFile))
		if err != nil {
			return nil, err
		}
		s.token = tok
	}
	if sc.TLSOn() {
		t, err := secure.LoadTLS(secure.TLSOptions{
			CAFile: sc.TLSCA, CertFile: sc.TLSCert, KeyFile: sc.TLSKey, RevokedFile: sc.TLSRevoked,
			Cluster: cfg.ClusterID,
			OnRefused: func(remote, reason string) {
				s.log.Warn("peer refused", "remote", remote, "reason", reason)
			},
		})
		if err != nil {
			return nil, err
		}
		if self := t.Self(); self.Role != cfg.Role {
			return nil, fmt.Errorf("tls cert %s is for role %s, this node's role is %s", sc.TLSCert, self.Role, cfg.Role)
		}
		s.tls = t
		s.grants = authz.NewGrants(t, s.log)
	}
	perms, err := authz.Compile(sc.Permissions)
	if err != nil {
		return nil, err
	}
	s.perms = perms
	if sc.GossipKeyring != "" {
		keys, err := secure.ReadKeyring(sc.GossipKeyring)
		if err != nil {
			return nil, err
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		s.keyring = kr
	}
	return s, nil
}

// gossipKeyring returns the keyring gossip encrypts with, or nil.
func (s *security) gossipKeyring() *memberlist.Keyring {
	if s == nil {
		return nil
	}
	return s.keyring
}

// newNodeID returns the node id for a new store: 0 (random) without TLS,
// else one the certificate binds.
func (s *security) newNodeID() hlc.NodeID {
	if s == nil || s.tls == nil {
		return 0
	}
	n, err := s.tls.Self().NewNodeID()
	if err != nil {
		return 0 // checkNode refuses the random one
	}
	return hlc.NodeID(n)
}

// checkNode refuses a store whose node id the certificate does not bind.
func (s *security) checkNode(n hlc.NodeID) error {
	if s == nil || s.tls == nil {
		return nil
	}
	if self := s.tls.Self(); !self.Allows(uint64(n)) {
		return fmt.Errorf("this store's node id %s is not bound by the tls certificate %q (%016x/%d): issue one for it with `replicad tls cert create NAME --node-id %s`",
			n, self.Name, self.ID, self.Bits, n)
	}
	return nil
}

// syncListener wraps the sync listener in TLS when it is on.
func (s *security) syncListener(l net.Listener) net.Listener {
	if s == nil || s.tls == nil {
		return l
	}
	return tls.NewListener(l, s.tls.Server())
}

// engine sets the engine's TLS dialer and peer authentication, and the
// permission filter on remote writes.
func (s *security) engine(c *replication.Config, r *replica) {
	if s == nil {
		return
	}
	isHub := s.cfg.Role == "hub"
	if isHub {
		// A hub takes the system tables' records whole only from hubs
		// (systables.go).
		c.Local.AdmitRecord = r.admitRecord
	}
	if s.perms != nil || isHub {
		// The write permissions, and on a hub the system tables' writers
		// (systables.go).
		var sys func(replication.Peer, *crdt.Write) string
		if isHub {
			sys = r.sysJudge
		}
		r.enf = authz.NewEnforcer(r.host("authz"), s.perms, sys)
		c.Local.Admit = r.enf.Admit // Hook and Applied: hooks.go
	}
	if s.tls == nil {
		return
	}
	// Writes from device peers are judged by their origins' grants
	// (grants.go); gossip pushes, authenticated only by the gossip key,
	// are hints to sync over an authenticated session.
	s.grants.SetStore(r.store)
	c.Local.Filter = func(p replication.Peer) *replication.WriteFilter {
		f := s.peerFilter(p, isHub)
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
	c.PushHints = true // the grants' cache is invalidated by an observer of applied batches (hooks.go)
	d := &net.Dialer{Timeout: 5 * time.Second}
	c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		td := &tls.Dialer{NetDialer: d, Config: s.tls.Client(addr)}
		return td.DialContext(ctx, "tcp", addr)
	}
	c.Authenticate = func(conn net.Conn, p replication.Peer) error {
		return s.tls.Authenticate(conn, uint64(p.Node), p.Role)
	}
}

// startSecurity, before any session: carries out the permission
// write-backs a crash left queued, publishes a hub's grants, and keeps
// them re-signed.
func (r *replica) startSecurity(ctx context.Context) {
	if r.enf != nil {
		if err := r.enf.Replay(); err != nil {
			r.a.log.Error("permission: write-backs left queued", "error", err)
		}
	}
	s := r.a.sec
	if s == nil || s.tls == nil || r.a.cfg.Role != "hub" {
		return
	}
	if err := r.publishGrants(time.Now()); err != nil {
		r.a.log.Error("publishing the grants failed", "error", err)
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.watchGrants(ctx.Done()) }()
}

// grantValidity is the validity of the grants this hub signs.
func (s *security) grantValidity() time.Duration {
	if s.cfg.Security.GrantValidity > 0 {
		return s.cfg.Security.GrantValidity
	}
	return secure.DefaultGrantValidity
}

// apiTLS reports whether the API is served over TLS: with TLS on and the
// API not on loopback (local apps keep plain HTTP on loopback).
func (s *security) apiTLS() bool {
	return s != nil && s.tls != nil && !secure.IsLoopback(s.cfg.APIAddr)
}

// apiListener wraps the API listener in mutual TLS when apiTLS.
func (s *security) apiListener(l net.Listener) net.Listener {
	if !s.apiTLS() {
		return l
	}
	return tls.NewListener(l, s.tls.Server())
}

// apiHandler adds the security endpoints to h, then puts in front of
// everything the checks of httpapi.Guard (cross-site state changes, bodies
// over the limit), the read rules of restricted nodes (online_readperm.go)
// and, first of all when a token is required, the bearer check: nothing
// answers what it would do before the request is authenticated.
func (s *security) apiHandler(a *Agent, h http.Handler) http.Handler {
	rt := httpapi.NewRouter(a.apiError)
	rt.Handle("GET /v1/security", func(w http.ResponseWriter, r *http.Request) (any, error) { return s.status(), nil })
	rt.Handle("GET /v1/grants", func(w http.ResponseWriter, r *http.Request) (any, error) { return s.grantStatus(), nil })
	rt.HandleHTTP("POST /v1/gossip/keys", http.MaxBytesHandler(rt.Func(func(w http.ResponseWriter, r *http.Request) (any, error) {
		return s.rotate(r)
	}), a.cfg.MaxBodyBytes))
	root := rt.Before(h) // the rest (and their 405s) are h's
	guarded := a.guard.Sites(a.readGuard(root))
	if s.token == "" {
		return guarded
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure.RequireBearer(guarded, s.token, func(r *http.Request, reason string) {
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

func (s *security) status() SecurityStatus {
	st := SecurityStatus{APIToken: s.token != "", APITLS: s.apiTLS(), AtRest: s.cfg.AtRest.On(), Insecure: config.InsecureSync(&s.cfg)}
	if s.tls != nil {
		id := s.tls.Self()
		st.TLS = &TLSStatus{Name: id.Name, Role: id.Role, NodeIDs: fmt.Sprintf("%016x/%d", id.ID, id.Bits), Serial: secure.SerialString(id.Serial), NotAfter: id.NotAfter}
	}
	if s.keyring != nil {
		s.keyMu.Lock()
		st.Gossip = &GossipStatus{Primary: secure.KeyFingerprint(s.keyring.GetPrimaryKey())}
		for _, k := range s.keyring.GetKeys() {
			st.Gossip.Keys = append(st.Gossip.Keys, secure.KeyFingerprint(k))
		}
		s.keyMu.Unlock()
	}
	return st
}

// rotate installs, uses or removes a gossip key, and rewrites the keyring
// file so that a restart keeps the change.
func (s *security) rotate(r *http.Request) (any, error) {
	var body api.GossipKeyRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if s.keyring == nil {
		return nil, httpapi.Errorf(http.StatusConflict, "gossip encryption is off: start the agent with --gossip-keyring FILE")
	}
	key, err := secure.ParseGossipKey(body.Key)
	if err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	s.keyMu.Lock()
	err = s.rotateLocked(body.Op, key)
	s.keyMu.Unlock()
	if err != nil {
		return nil, err
	}
	s.log.Info("gossip keyring changed", "op", body.Op, "key", secure.KeyFingerprint(key))
	st := s.status()
	return st.Gossip, nil
}

func (s *security) rotateLocked(op string, key []byte) error {
	var err error
	switch op {
	case "install":
		err = s.keyring.AddKey(key)
	case "use":
		err = s.keyring.UseKey(key)
	case "remove":
		err = s.keyring.RemoveKey(key)
	default:
		return httpapi.Errorf(http.StatusBadRequest, "op %q: want install, use or remove", op)
	}
	if err != nil {
		return httpapi.Errorf(http.StatusConflict, "%s %s: %v", op, secure.KeyFingerprint(key), err)
	}
	if err := secure.WriteKeyring(s.cfg.Security.GossipKeyring, s.keyring.GetPrimaryKey(), s.keyring.GetKeys()); err != nil {
		return fmt.Errorf("the keyring changed in memory but its file was not rewritten: %w", err)
	}
	return nil
}
