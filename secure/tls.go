package secure

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// TLSOptions configure LoadTLS.
type TLSOptions struct {
	CAFile, CertFile, KeyFile string
	// RevokedFile, if set, lists revoked serials; it must exist at load
	// and is re-read whenever its modification time or size changes
	// (checked on every handshake), so revoking needs no restart.
	RevokedFile string
	// Cluster is this node's cluster id: the CA and every peer
	// certificate must name it.
	Cluster string
	// OnRefused, if set, is told of every refused peer certificate (the
	// remote address, and why): refusals are logged.
	OnRefused func(remote, reason string)
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// TLS holds a node's certificate and the cluster's trust: it builds the
// tls.Configs for sync streams and the API and checks peers.
type TLS struct {
	opts TLSOptions
	pool *x509.CertPool
	cert tls.Certificate
	self Identity
	rev  *revocations
}

// ErrRefused marks a refused peer certificate.
var ErrRefused = errors.New("peer certificate refused")

// LoadTLS reads the CA, the node's certificate and key, and the
// revocation list, and checks that they fit together: the certificate
// chains to the CA, names this cluster, is valid now and not revoked.
func LoadTLS(opts TLSOptions) (*TLS, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cas, err := readCerts(opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("tls ca: %s holds a certificate that is not a CA", opts.CAFile)
		}
		pool.AddCert(c)
	}
	cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert: %w", err)
	}
	if fi, err := os.Stat(opts.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tls key %s has mode %v: want 0600", opts.KeyFile, fi.Mode().Perm())
	}
	t := &TLS{opts: opts, pool: pool, cert: cert, rev: &revocations{path: opts.RevokedFile}}
	if opts.RevokedFile != "" {
		if _, err := os.Stat(opts.RevokedFile); err != nil {
			return nil, fmt.Errorf("tls revocation list: %w", err)
		}
		if err := t.rev.refresh(); err != nil {
			return nil, fmt.Errorf("tls revocation list: %w", err)
		}
	}
	self, err := t.check(cert.Certificate)
	if err != nil {
		return nil, fmt.Errorf("tls cert %s: %w", opts.CertFile, err)
	}
	t.self = self
	return t, nil
}

// Self returns what this node's own certificate binds.
func (t *TLS) Self() Identity { return t.self }

// check verifies a peer's chain (DER, leaf first) against the CA, the
// cluster and the revocation list, and returns the leaf's identity.
func (t *TLS) check(raw [][]byte) (Identity, error) {
	id, _, err := t.checkAt(raw, t.opts.Now())
	return id, err
}

// checkAt is check at time now; it also returns the parsed leaf.
func (t *TLS) checkAt(raw [][]byte, now time.Time) (Identity, *x509.Certificate, error) {
	if len(raw) == 0 {
		return Identity{}, nil, errors.New("no certificate presented")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return Identity{}, nil, fmt.Errorf("malformed certificate: %v", err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if now.After(leaf.NotAfter) {
		return Identity{}, nil, fmt.Errorf("certificate %q (serial %s) expired at %s", leaf.Subject.CommonName, SerialString(leaf.SerialNumber), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return Identity{}, nil, fmt.Errorf("certificate %q (serial %s) is not valid before %s", leaf.Subject.CommonName, SerialString(leaf.SerialNumber), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: t.pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Identity{}, nil, fmt.Errorf("certificate %q is not signed by this cluster's CA: %v", leaf.Subject.CommonName, err)
	}
	id, err := identityOf(leaf)
	if err != nil {
		return Identity{}, nil, err
	}
	if id.Cluster != t.opts.Cluster {
		return Identity{}, nil, fmt.Errorf("certificate %q is for cluster %q, this node is in cluster %q", id.Name, id.Cluster, t.opts.Cluster)
	}
	if t.rev.path != "" {
		if err := t.rev.refresh(); err != nil && t.opts.OnRefused != nil {
			t.opts.OnRefused("", "revocation list unreadable, keeping the last one read: "+err.Error())
		}
		for _, c := range certs {
			if t.rev.has(c.SerialNumber) {
				return Identity{}, nil, fmt.Errorf("certificate %q (serial %s) is revoked", c.Subject.CommonName, SerialString(c.SerialNumber))
			}
		}
	}
	return id, leaf, nil
}

func (t *TLS) verifier(remote string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		raw := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			raw[i] = c.Raw
		}
		if _, err := t.check(raw); err != nil {
			if t.opts.OnRefused != nil {
				t.opts.OnRefused(remote, err.Error())
			}
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return nil
	}
}

func (t *TLS) base() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
	}
}

// Server returns the configuration for accepting sync streams: a client
// certificate from this cluster's CA is required.
func (t *TLS) Server() *tls.Config {
	c := t.base()
	c.ClientAuth = tls.RequireAnyClientCert // verified by VerifyConnection, with the revocation list
	c.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		cc := t.base()
		cc.ClientAuth = tls.RequireAnyClientCert
		cc.VerifyConnection = t.verifier(remoteOf(h.Conn))
		return cc, nil
	}
	return c
}

// Client returns the configuration for dialing addr. The peer's chain is
// verified against the cluster's CA, its cluster and the revocation list;
// host names are not checked: a peer's identity is the node id its
// certificate binds, checked against the one it claims in the sync
// handshake (Authenticate).
func (t *TLS) Client(addr string) *tls.Config {
	c := t.base()
	c.InsecureSkipVerify = true // replaced by VerifyConnection below
	c.VerifyConnection = t.verifier(addr)
	return c
}

func remoteOf(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}

// PeerIdentity returns the identity of a TLS connection's verified peer.
func PeerIdentity(c net.Conn) (Identity, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return Identity{}, errors.New("not a TLS connection")
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("no verified peer certificate")
	}
	return identityOf(cs.PeerCertificates[0])
}

// StateIdentity returns the identity of the verified peer of a TLS
// connection state (an HTTP request's TLS field).
func StateIdentity(cs *tls.ConnectionState) (Identity, error) {
	if cs == nil || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("no verified peer certificate")
	}
	return identityOf(cs.PeerCertificates[0])
}

// Authenticate checks the node id and role a peer claims in the sync
// handshake against its certificate (CheckPeer), telling OnRefused of a
// refusal.
func (t *TLS) Authenticate(c net.Conn, node uint64, role string) error {
	err := CheckPeer(c, t.opts.Cluster, node, role)
	if err != nil && t.opts.OnRefused != nil {
		t.opts.OnRefused(remoteOf(c), err.Error())
	}
	return err
}

// CheckPeer checks what a peer claims in the sync handshake (its node id
// and role, in cluster) against the replicad identity of its verified
// TLS certificate: the certificate must name cluster, bind the node id
// and name the role. The agent (TLS.Authenticate) and an embedded
// replica given a TLS configuration (package replica) both check peers
// with it.
func CheckPeer(c net.Conn, cluster string, node uint64, role string) error {
	id, err := PeerIdentity(c)
	if err != nil {
		return err
	}
	switch {
	case id.Cluster != cluster:
		return fmt.Errorf("its certificate %q is for cluster %q, this node is in cluster %q", id.Name, id.Cluster, cluster)
	case !id.Allows(node):
		return fmt.Errorf("claims node %016x, its certificate %q (serial %s) binds %016x/%d", node, id.Name, SerialString(id.Serial), id.ID, id.Bits)
	case role != id.Role:
		return fmt.Errorf("claims role %q, its certificate %q binds role %q", role, id.Name, id.Role)
	}
	return nil
}

// revocations is the revocation list, re-read when its file changes.
type revocations struct {
	path string

	mu      sync.Mutex
	mtime   time.Time
	size    int64
	serials map[string]bool
}

func (r *revocations) refresh() error {
	fi, err := os.Stat(r.path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	same := r.serials != nil && fi.ModTime().Equal(r.mtime) && fi.Size() == r.size
	r.mu.Unlock()
	if same {
		return nil
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	set, err := ParseRevoked(b)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.serials, r.mtime, r.size = set, fi.ModTime(), fi.Size()
	r.mu.Unlock()
	return nil
}

func (r *revocations) has(s *big.Int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serials[SerialString(s)]
}

// ParseRevoked parses a revocation list: one hex serial per line, with
// optional ':' separators, a "serial=" prefix, and '#' comments.
func ParseRevoked(b []byte) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		line = strings.TrimPrefix(strings.ToLower(line), "serial=")
		line = strings.ReplaceAll(line, ":", "")
		v, ok := new(big.Int).SetString(line, 16)
		if !ok || v.Sign() < 0 {
			return nil, fmt.Errorf("line %d: %q is not a hex serial", n, sc.Text())
		}
		set[SerialString(v)] = true
	}
	return set, sc.Err()
}
