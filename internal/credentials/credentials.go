// Package credentials loads a node's security material and serves what it
// says of itself: the API's bearer token (created on first use), the TLS
// identity (the cluster's CA, this node's certificate and key, the
// revocation list), the gossip keyring with its rotation
// (POST /v1/gossip/keys rewrites the keyring file), and the store's
// encryption key at rest (atrest.go). It decides nothing
// about what a node may write or read: that is internal/ext/authz.
package credentials

import (
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
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/secure"
)

// Credentials are a node's loaded security material.
type Credentials struct {
	cfg config.Config
	log hclog.Logger
	// Token is the API's bearer token; "" when the API needs none.
	Token string
	// TLS is the node's TLS identity; nil without TLS.
	TLS *secure.TLS

	keyMu   sync.Mutex
	keyring *memberlist.Keyring
}

// Load checks the configuration's security (sync off loopback needs TLS
// or --insecure) and loads the token, the TLS identity and the gossip
// keyring it names. log is the security logger.
func Load(cfg config.Config, log hclog.Logger) (*Credentials, error) {
	c := &Credentials{cfg: cfg, log: log}
	sc := cfg.Security
	if err := config.CheckInsecure(&cfg); err != nil {
		return nil, err
	}
	if config.InsecureSync(&cfg) {
		c.log.Warn("INSECURE: sync is served off loopback without mutual TLS (--insecure): anyone who reaches "+cfg.SyncAddr+" can claim any node id and role, write in any node's name and read everything; configure tls_ca, tls_cert and tls_key", "sync_addr", cfg.SyncAddr)
	}
	if sc.APIAuth == config.APIAuthToken || !secure.IsLoopback(cfg.APIAddr) {
		tok, err := secure.LoadOrCreateToken(filepath.Join(cfg.DataDir, secure.TokenFile))
		if err != nil {
			return nil, err
		}
		c.Token = tok
	}
	if sc.TLSOn() {
		t, err := secure.LoadTLS(secure.TLSOptions{
			CAFile: sc.TLSCA, CertFile: sc.TLSCert, KeyFile: sc.TLSKey, RevokedFile: sc.TLSRevoked,
			Cluster: cfg.ClusterID,
			OnRefused: func(remote, reason string) {
				c.log.Warn("peer refused", "remote", remote, "reason", reason)
			},
		})
		if err != nil {
			return nil, err
		}
		if self := t.Self(); self.Role != cfg.Role {
			return nil, fmt.Errorf("tls cert %s is for role %s, this node's role is %s", sc.TLSCert, self.Role, cfg.Role)
		}
		c.TLS = t
	}
	if sc.GossipKeyring != "" {
		keys, err := secure.ReadKeyring(sc.GossipKeyring)
		if err != nil {
			return nil, err
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		c.keyring = kr
	}
	return c, nil
}

// HasTLS reports whether this node has a TLS identity.
func (c *Credentials) HasTLS() bool { return c != nil && c.TLS != nil }

// Keyring returns the keyring gossip encrypts with, or nil.
func (c *Credentials) Keyring() *memberlist.Keyring {
	if c == nil {
		return nil
	}
	return c.keyring
}

// NewNodeID returns the node id for a new store: 0 (random) without TLS,
// else one the certificate binds.
func (c *Credentials) NewNodeID() hlc.NodeID {
	if !c.HasTLS() {
		return 0
	}
	n, err := c.TLS.Self().NewNodeID()
	if err != nil {
		return 0 // CheckNode refuses the random one
	}
	return hlc.NodeID(n)
}

// CheckNode refuses a store whose node id the certificate does not bind.
func (c *Credentials) CheckNode(n hlc.NodeID) error {
	if !c.HasTLS() {
		return nil
	}
	if self := c.TLS.Self(); !self.Allows(uint64(n)) {
		return fmt.Errorf("this store's node id %s is not bound by the tls certificate %q (%016x/%d): issue one for it with `replicad tls cert create NAME --node-id %s`",
			n, self.Name, self.ID, self.Bits, n)
	}
	return nil
}

// SyncListener wraps the sync listener in TLS when it is on.
func (c *Credentials) SyncListener(l net.Listener) net.Listener {
	if !c.HasTLS() {
		return l
	}
	return tls.NewListener(l, c.TLS.Server())
}

// GrantValidity is the validity of the grants a hub signs.
func (c *Credentials) GrantValidity() time.Duration {
	if c.cfg.Security.GrantValidity > 0 {
		return c.cfg.Security.GrantValidity
	}
	return secure.DefaultGrantValidity
}

// APITLS reports whether the API is served over TLS: with TLS on and the
// API not on loopback (local apps keep plain HTTP on loopback).
func (c *Credentials) APITLS() bool {
	return c.HasTLS() && !secure.IsLoopback(c.cfg.APIAddr)
}

// APIListener wraps the API listener in mutual TLS when APITLS.
func (c *Credentials) APIListener(l net.Listener) net.Listener {
	if !c.APITLS() {
		return l
	}
	return tls.NewListener(l, c.TLS.Server())
}

// Status is what GET /v1/security answers.
func (c *Credentials) Status() api.SecurityStatus {
	st := api.SecurityStatus{APIToken: c.Token != "", APITLS: c.APITLS(), AtRest: c.cfg.AtRest.On(), Insecure: config.InsecureSync(&c.cfg)}
	if c.TLS != nil {
		id := c.TLS.Self()
		st.TLS = &api.TLSStatus{Name: id.Name, Role: id.Role, NodeIDs: fmt.Sprintf("%016x/%d", id.ID, id.Bits), Serial: secure.SerialString(id.Serial), NotAfter: id.NotAfter}
	}
	if c.keyring != nil {
		c.keyMu.Lock()
		st.Gossip = &api.GossipStatus{Primary: secure.KeyFingerprint(c.keyring.GetPrimaryKey())}
		for _, k := range c.keyring.GetKeys() {
			st.Gossip.Keys = append(st.Gossip.Keys, secure.KeyFingerprint(k))
		}
		c.keyMu.Unlock()
	}
	return st
}

// Error is an answer's error with its HTTP status (its Status method).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Status is the HTTP status the error is answered with.
func (e *Error) Status() int { return e.Code }

func errorf(code int, format string, args ...any) error {
	return &Error{code, fmt.Sprintf(format, args...)}
}

// Rotate installs, uses or removes a gossip key (POST /v1/gossip/keys),
// and rewrites the keyring file so that a restart keeps the change.
func (c *Credentials) Rotate(body api.GossipKeyRequest) (*api.GossipStatus, error) {
	if c.keyring == nil {
		return nil, errorf(http.StatusConflict, "gossip encryption is off: start the agent with --gossip-keyring FILE")
	}
	key, err := secure.ParseGossipKey(body.Key)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	c.keyMu.Lock()
	err = c.rotateLocked(body.Op, key)
	c.keyMu.Unlock()
	if err != nil {
		return nil, err
	}
	c.log.Info("gossip keyring changed", "op", body.Op, "key", secure.KeyFingerprint(key))
	st := c.Status()
	return st.Gossip, nil
}

func (c *Credentials) rotateLocked(op string, key []byte) error {
	var err error
	switch op {
	case "install":
		err = c.keyring.AddKey(key)
	case "use":
		err = c.keyring.UseKey(key)
	case "remove":
		err = c.keyring.RemoveKey(key)
	default:
		return errorf(http.StatusBadRequest, "op %q: want install, use or remove", op)
	}
	if err != nil {
		return errorf(http.StatusConflict, "%s %s: %v", op, secure.KeyFingerprint(key), err)
	}
	if err := secure.WriteKeyring(c.cfg.Security.GossipKeyring, c.keyring.GetPrimaryKey(), c.keyring.GetKeys()); err != nil {
		return fmt.Errorf("the keyring changed in memory but its file was not rewritten: %w", err)
	}
	return nil
}
