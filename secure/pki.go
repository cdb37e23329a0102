package secure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files written by CreateCA and CreateNodeCert in a PKI directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	// RevokedFile is the conventional revocation list: one certificate
	// serial per line (hex, as CreateNodeCert prints it; ':' separators
	// and a "serial=" prefix are accepted), '#' starts a comment.
	RevokedFile = "revoked.txt"
)

// Defaults of the certificates' lifetimes.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// DefaultIDBits is how many leading bits of the node id a new
	// certificate fixes: the store draws the other 32 at random, so a
	// reset (which takes a new node id) keeps the same certificate.
	DefaultIDBits = 32
)

// URI SANs that bind a certificate to the cluster, a node id range and a
// role.
const (
	uriCluster = "urn:replicad:cluster:" // + url.PathEscape(cluster)
	uriNode    = "urn:replicad:node:"    // + 16 hex digits + ":" + bits
	uriRole    = "urn:replicad:role:"    // + hub | device
)

// Identity is what a node certificate says about its holder.
type Identity struct {
	Name    string // the certificate's common name (a label for people)
	Cluster string
	// ID and Bits: the holder may use any node id whose Bits leading
	// bits equal ID's (Bits 64: exactly ID).
	ID       uint64
	Bits     int
	Role     string // hub or device
	Serial   *big.Int
	NotAfter time.Time
}

// Allows reports whether node is a node id the certificate's holder may
// claim.
func (id Identity) Allows(node uint64) bool {
	if node == 0 || id.Bits <= 0 {
		return false
	}
	mask := ^uint64(0) << (64 - id.Bits)
	if id.Bits >= 64 {
		mask = ^uint64(0)
	}
	return node&mask == id.ID&mask
}

// NewNodeID returns a node id the identity allows: its fixed bits, the
// rest random (for a new store).
func (id Identity) NewNodeID() (uint64, error) {
	for range 100 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		r := binary.BigEndian.Uint64(b[:])
		var n uint64
		if id.Bits >= 64 {
			n = id.ID
		} else {
			mask := ^uint64(0) << (64 - id.Bits)
			n = id.ID&mask | r&^mask
		}
		if n != 0 {
			return n, nil
		}
	}
	return 0, errors.New("no node id available")
}

// SerialString formats a serial as RevokedFile expects it.
func SerialString(s *big.Int) string { return strings.ToUpper(s.Text(16)) }

// identityOf reads the replicad URIs of a certificate.
func identityOf(c *x509.Certificate) (Identity, error) {
	id := Identity{Name: c.Subject.CommonName, Serial: c.SerialNumber, NotAfter: c.NotAfter}
	var haveNode bool
	for _, u := range c.URIs {
		s := u.String()
		switch {
		case strings.HasPrefix(s, uriCluster):
			v, err := url.PathUnescape(strings.TrimPrefix(s, uriCluster))
			if err != nil {
				return id, fmt.Errorf("certificate cluster %q: %v", s, err)
			}
			id.Cluster = v
		case strings.HasPrefix(s, uriNode):
			hexID, bits, ok := strings.Cut(strings.TrimPrefix(s, uriNode), ":")
			n, err1 := strconv.ParseUint(hexID, 16, 64)
			b, err2 := strconv.Atoi(bits)
			if !ok || err1 != nil || err2 != nil || b < 1 || b > 64 || len(hexID) != 16 {
				return id, fmt.Errorf("certificate node binding %q: want %s<16 hex digits>:<bits 1-64>", s, uriNode)
			}
			id.ID, id.Bits, haveNode = n, b, true
		case strings.HasPrefix(s, uriRole):
			id.Role = strings.TrimPrefix(s, uriRole)
		}
	}
	switch {
	case id.Cluster == "":
		return id, errors.New("certificate names no replicad cluster")
	case !haveNode:
		return id, errors.New("certificate binds no replicad node id")
	case id.Role != "hub" && id.Role != "device":
		return id, fmt.Errorf("certificate role %q: want hub or device", id.Role)
	}
	return id, nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// writePEM writes one PEM block to path with mode (refusing to overwrite).
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// CAOptions configure CreateCA.
type CAOptions struct {
	Dir      string // the PKI directory (created if missing)
	Cluster  string // the cluster id the CA signs for (required)
	Validity time.Duration
	Now      time.Time // zero: time.Now()
}

// CreateCA creates a cluster CA in opts.Dir: ca.crt and ca.key (0600),
// and an empty revoked.txt. It refuses to overwrite an existing CA.
func CreateCA(opts CAOptions) (*x509.Certificate, error) {
	if opts.Cluster == "" || len(opts.Cluster) > 64 {
		return nil, errors.New("cluster id: want 1-64 bytes")
	}
	if opts.Validity <= 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(opts.Dir, f)); err == nil {
			return nil, fmt.Errorf("%s exists: refusing to overwrite a CA", filepath.Join(opts.Dir, f))
		}
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	cu, _ := url.Parse(uriCluster + url.PathEscape(opts.Cluster))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "replicad CA " + opts.Cluster, Organization: []string{opts.Cluster}},
		NotBefore:             opts.Now.Add(-time.Minute),
		NotAfter:              opts.Now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{cu},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(opts.Dir, CAKeyFile), key); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(opts.Dir, CACertFile), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	rev := filepath.Join(opts.Dir, RevokedFile)
	if _, err := os.Stat(rev); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(rev, []byte("# revoked certificate serials, one per line (hex); re-read on every handshake\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return x509.ParseCertificate(der)
}

// CertOptions configure CreateNodeCert.
type CertOptions struct {
	Dir  string // the PKI directory holding ca.crt and ca.key; NAME.crt and NAME.key are written there
	Name string // the node's label (file names and common name): [A-Za-z0-9_.-], 1-64
	Role string // hub or device (default device)
	// NodeID, when not 0, binds exactly this node id (an existing store's,
	// as `replicad status` shows it); otherwise a random prefix of
	// DefaultIDBits bits is bound and the store's id is drawn under it.
	NodeID   uint64
	Validity time.Duration
	Now      time.Time
	// Hosts are DNS names or IPs put in the certificate's SANs, for
	// clients that check host names (replicad's own peers check the node
	// id, not the host).
	Hosts []string
}

func validName(s string) bool {
	if s == "" || len(s) > 64 || s == "ca" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// CreateNodeCert issues a node certificate signed by the CA in opts.Dir,
// valid for client and server authentication, and writes NAME.crt and
// NAME.key (0600).
func CreateNodeCert(opts CertOptions) (*x509.Certificate, Identity, error) {
	if !validName(opts.Name) {
		return nil, Identity{}, fmt.Errorf("node name %q: 1-64 characters from [A-Za-z0-9_.-], not \"ca\"", opts.Name)
	}
	if opts.Role == "" {
		opts.Role = "device"
	}
	if opts.Role != "hub" && opts.Role != "device" {
		return nil, Identity{}, fmt.Errorf("role %q: want hub or device", opts.Role)
	}
	if opts.Validity <= 0 {
		opts.Validity = DefaultCertValidity
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	caCert, caKey, err := loadCA(opts.Dir)
	if err != nil {
		return nil, Identity{}, err
	}
	caID := ""
	for _, u := range caCert.URIs {
		if s := u.String(); strings.HasPrefix(s, uriCluster) {
			caID, _ = url.PathUnescape(strings.TrimPrefix(s, uriCluster))
		}
	}
	if caID == "" {
		return nil, Identity{}, errors.New("the CA names no replicad cluster")
	}
	crtPath, keyPath := filepath.Join(opts.Dir, opts.Name+".crt"), filepath.Join(opts.Dir, opts.Name+".key")
	for _, p := range []string{crtPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return nil, Identity{}, fmt.Errorf("%s exists: remove it (and revoke its serial) to issue a new one", p)
		}
	}
	id := Identity{Name: opts.Name, Cluster: caID, Role: opts.Role, ID: opts.NodeID, Bits: 64}
	if opts.NodeID == 0 {
		id.Bits = DefaultIDBits
		for id.ID == 0 {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, Identity{}, err
			}
			id.ID = binary.BigEndian.Uint64(b[:]) &^ (1<<(64-DefaultIDBits) - 1)
		}
	}
	key, err := newKey()
	if err != nil {
		return nil, Identity{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, Identity{}, err
	}
	uris := []*url.URL{}
	for _, s := range []string{
		uriCluster + url.PathEscape(caID),
		fmt.Sprintf("%s%016x:%d", uriNode, id.ID, id.Bits),
		uriRole + opts.Role,
	} {
		u, err := url.Parse(s)
		if err != nil {
			return nil, Identity{}, err
		}
		uris = append(uris, u)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: opts.Name, Organization: []string{caID}},
		NotBefore:    opts.Now.Add(-time.Minute),
		NotAfter:     opts.Now.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         uris,
	}
	addHosts(tmpl, opts.Hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, Identity{}, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, Identity{}, err
	}
	if err := writePEM(crtPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, Identity{}, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, Identity{}, err
	}
	id.Serial, id.NotAfter = c.SerialNumber, c.NotAfter
	return c, id, nil
}

func loadCA(dir string) (*x509.Certificate, any, error) {
	certs, err := readCerts(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, errors.New("CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	return certs[0], k, nil
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return out, nil
}
