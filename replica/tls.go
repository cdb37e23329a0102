package replica

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// Sync over TLS. A replica given Config.TLS (or the agent, whose TLS
// identity comes through internal/replicaopt) authenticates its peers as
// the agent does: the TLS handshake verifies the peer's certificate
// chain, then the sync handshake's claims (node id, role, cluster) are
// checked against the replicad identity the certificate binds
// (secure.CheckPeer). Its own certificate binds its node id: a new store
// takes one it allows, an existing store it does not allow is refused.

// tlsIdentity reads the replicad identity of Config.TLS's certificate and
// checks it against the configuration.
func (c *Config) tlsIdentity() (secure.Identity, error) {
	if len(c.TLS.Certificates) == 0 || len(c.TLS.Certificates[0].Certificate) == 0 {
		return secure.Identity{}, fmt.Errorf("%w: Config.TLS has no certificate", ErrInvalid)
	}
	leaf := c.TLS.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.TLS.Certificates[0].Certificate[0]); err != nil {
			return secure.Identity{}, fmt.Errorf("%w: Config.TLS: %v", ErrInvalid, err)
		}
	}
	id, err := secure.CertIdentity(leaf)
	switch {
	case err != nil:
		return id, fmt.Errorf("%w: Config.TLS: %v (make node certificates with `replicad tls cert create`)", ErrInvalid, err)
	case id.Cluster != c.ClusterID:
		return id, fmt.Errorf("%w: Config.TLS: the certificate is for cluster %q, Config.ClusterID is %q", ErrInvalid, id.Cluster, c.ClusterID)
	case id.Role != c.Role:
		return id, fmt.Errorf("%w: Config.TLS: the certificate is for role %q, Config.Role is %q", ErrInvalid, id.Role, c.Role)
	}
	return id, nil
}

// newNodeID is the node id of a new store that id allows (0: random).
func newNodeID(id secure.Identity) hlc.NodeID {
	n, err := id.NewNodeID()
	if err != nil {
		return 0 // the check after Open refuses the random one
	}
	return hlc.NodeID(n)
}

// checkNode refuses a store whose node id the certificate does not bind.
func checkNode(st *store.Store, id secure.Identity) error {
	if n := st.NodeID(); !id.Allows(uint64(n)) {
		return fmt.Errorf("%w: this store's node id %s is not bound by the TLS certificate %q (%016x/%d)", ErrInvalid, n, id.Name, id.ID, id.Bits)
	}
	return nil
}

// syncTLS makes the engine dial over TLS and authenticate every peer
// (dialed or served) against its certificate; gossip pushes become hints
// to sync over an authenticated session. The agent's TLS identity
// (internal/replicaopt) takes the same path as Config.TLS.
func (r *Replica) syncTLS(ecfg *replication.Config) {
	var client func(addr string) *tls.Config
	var auth func(net.Conn, replication.Peer) error
	switch t := r.opt.TLS; {
	case t != nil:
		client = t.Client
		auth = func(c net.Conn, p replication.Peer) error { return t.Authenticate(c, uint64(p.Node), p.Role) }
	case r.cfg.TLS != nil:
		client = func(string) *tls.Config { return r.cfg.TLS }
		cluster := r.cfg.ClusterID
		auth = func(c net.Conn, p replication.Peer) error {
			err := secure.CheckPeer(c, cluster, uint64(p.Node), p.Role)
			if err != nil {
				r.log.Warn("peer refused", "remote", c.RemoteAddr().String(), "reason", err.Error())
			}
			return err
		}
	default:
		return
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	ecfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		td := &tls.Dialer{NetDialer: d, Config: client(addr)}
		return td.DialContext(ctx, "tcp", addr)
	}
	ecfg.Authenticate = auth
	ecfg.PushHints = true
}

// gossipKeys is the keyring of Config.GossipKeys (the first primary),
// with Config.GossipKey first; nil without a key.
func (c *Config) gossipKeys() (*memberlist.Keyring, error) {
	var keys [][]byte
	if len(c.GossipKey) > 0 {
		keys = append(keys, c.GossipKey)
	}
	keys = append(keys, c.GossipKeys...)
	if len(keys) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: gossip keys: %v", ErrInvalid, err)
	}
	return kr, nil
}
