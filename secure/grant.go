package secure

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A grant is a signed, expiring permission statement: a hub states, with
// its TLS key (ECDSA P-256) and its certificate chain attached, what the
// nodes of one permission rule may write and read. Anyone holding the
// cluster's CA (and revocation list) can check that a hub of this cluster,
// whose certificate is not revoked, issued it and that it has not expired,
// so that peers can judge writes relayed between devices the way the hubs
// do.
//
// Encoding: a JSON envelope {"v":1,"statement":B64,"sig":B64,"chain":[B64
// DER, leaf first]}; the statement is the JSON of Grant, and the signature
// is ECDSA (ASN.1) over SHA-256 of grantDomain followed by the statement's
// bytes exactly as sent (no canonical form is needed).

// Grant limits and defaults.
const (
	// DefaultGrantValidity is how long a grant is valid unless configured.
	DefaultGrantValidity = 24 * time.Hour
	// MaxGrantValidity bounds a grant's validity (ExpiresAt - IssuedAt).
	MaxGrantValidity = 30 * 24 * time.Hour
	// GrantClockSkew is how far in the future IssuedAt may be (the
	// issuer's clock may run ahead of the verifier's).
	GrantClockSkew = time.Minute
	// MaxGrantBytes bounds an encoded grant.
	MaxGrantBytes = 64 << 10

	grantVersion  = 1
	maxGrantChain = 4
	maxGrantList  = 1024
	maxGrantStr   = 256
)

// grantDomain separates grant signatures from any other use of the key.
const grantDomain = "replicad-grant-v1\x00"

// Grant is what a hub states about one permission rule.
type Grant struct {
	Cluster string `json:"cluster"`
	// Rule is the permission rule's name.
	Rule string `json:"rule"`
	// Nodes are the node ids or ID/BITS prefixes the rule applies to, as
	// in the config file.
	Nodes []string `json:"nodes"`
	// Write and Read are the rule's lists as in the config file (TABLE or
	// TABLE:FIELD); ReadSet tells an empty read list from none.
	Write   []string `json:"write"`
	Read    []string `json:"read,omitempty"`
	ReadSet bool     `json:"read_set,omitempty"`
	// IssuedMs and ExpiresMs are Unix milliseconds.
	IssuedMs  int64 `json:"issued_ms"`
	ExpiresMs int64 `json:"expires_ms"`
	// Issuer is the signing hub's node id (its certificate binds it).
	Issuer uint64 `json:"issuer"`
}

// IssuedAt returns the grant's issue time.
func (g *Grant) IssuedAt() time.Time { return time.UnixMilli(g.IssuedMs) }

// ExpiresAt returns the grant's expiry.
func (g *Grant) ExpiresAt() time.Time { return time.UnixMilli(g.ExpiresMs) }

// ValidAt reports why the grant is not valid at now ("" if it is).
func (g *Grant) ValidAt(now time.Time) string {
	ms := now.UnixMilli()
	switch {
	case ms >= g.ExpiresMs:
		return fmt.Sprintf("grant %q expired at %s", g.Rule, g.ExpiresAt().UTC().Format(time.RFC3339))
	case ms < g.IssuedMs-GrantClockSkew.Milliseconds():
		return fmt.Sprintf("grant %q is not valid before %s", g.Rule, g.IssuedAt().UTC().Format(time.RFC3339))
	}
	return ""
}

// SignedGrant is a decoded grant: the statement, its exact bytes, the
// signature and the signer's chain (DER, leaf first). Decoding checks
// the form only; TLS.VerifyGrant checks the rest.
type SignedGrant struct {
	Grant     Grant
	Statement []byte
	Sig       []byte
	Chain     [][]byte
}

type grantEnvelope struct {
	V         int      `json:"v"`
	Statement []byte   `json:"statement"`
	Sig       []byte   `json:"sig"`
	Chain     [][]byte `json:"chain"`
}

// validate checks a grant's form: names, node matches, lists, times.
func (g *Grant) validate() error {
	switch {
	case g.Cluster == "" || len(g.Cluster) > 64:
		return errors.New("grant: cluster: want 1-64 bytes")
	case g.Rule == "" || len(g.Rule) > maxGrantStr:
		return errors.New("grant: rule name: want 1-256 bytes")
	case g.Issuer == 0:
		return errors.New("grant: no issuer")
	case len(g.Nodes) == 0:
		return fmt.Errorf("grant %q: no nodes", g.Rule)
	case len(g.Nodes) > maxGrantList || len(g.Write) > maxGrantList || len(g.Read) > maxGrantList:
		return fmt.Errorf("grant %q: more than %d entries in a list", g.Rule, maxGrantList)
	case g.ExpiresMs <= g.IssuedMs:
		return fmt.Errorf("grant %q: expires before it is issued", g.Rule)
	case g.ExpiresMs-g.IssuedMs > MaxGrantValidity.Milliseconds():
		return fmt.Errorf("grant %q: valid for more than %s", g.Rule, MaxGrantValidity)
	case len(g.Read) > 0 && !g.ReadSet:
		return fmt.Errorf("grant %q: a read list without read_set", g.Rule)
	}
	for _, n := range g.Nodes {
		if _, _, err := ParseNodeMatch(n); err != nil {
			return fmt.Errorf("grant %q: %v", g.Rule, err)
		}
	}
	for _, l := range [][]string{g.Write, g.Read} {
		for _, e := range l {
			table, field, hasField := strings.Cut(e, ":")
			if table == "" || len(e) > maxGrantStr || hasField && (field == "" || strings.Contains(field, ":")) {
				return fmt.Errorf("grant %q: entry %q: want TABLE or TABLE:FIELD", g.Rule, e)
			}
		}
	}
	return nil
}

// ParseNodeMatch parses a node id or ID/BITS (hex id, 1-64 bits) as the
// permission rules write them.
func ParseNodeMatch(s string) (id uint64, bits int, err error) {
	hexID, b, hasBits := strings.Cut(s, "/")
	id, err = strconv.ParseUint(hexID, 16, 64)
	if err != nil || id == 0 || len(hexID) > 16 {
		return 0, 0, fmt.Errorf("node %q: want a node id (hex) or ID/BITS", s)
	}
	bits = 64
	if hasBits {
		bits, err = strconv.Atoi(b)
		if err != nil || bits < 1 || bits > 64 {
			return 0, 0, fmt.Errorf("node %q: BITS must be 1-64", s)
		}
	}
	return id, bits, nil
}

// DecodeGrant decodes an encoded grant and checks its form (not its
// signature or validity: see TLS.VerifyGrant).
func DecodeGrant(b []byte) (*SignedGrant, error) {
	if len(b) > MaxGrantBytes {
		return nil, fmt.Errorf("grant: %d bytes, at most %d", len(b), MaxGrantBytes)
	}
	var env grantEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("grant: malformed: %v", err)
	}
	switch {
	case env.V != grantVersion:
		return nil, fmt.Errorf("grant: version %d, want %d", env.V, grantVersion)
	case len(env.Statement) == 0 || len(env.Sig) == 0:
		return nil, errors.New("grant: no statement or no signature")
	case len(env.Chain) == 0 || len(env.Chain) > maxGrantChain:
		return nil, fmt.Errorf("grant: a chain of %d certificates, want 1-%d", len(env.Chain), maxGrantChain)
	}
	sg := &SignedGrant{Statement: env.Statement, Sig: env.Sig, Chain: env.Chain}
	dec := json.NewDecoder(strings.NewReader(string(env.Statement)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sg.Grant); err != nil {
		return nil, fmt.Errorf("grant: malformed statement: %v", err)
	}
	if dec.More() {
		return nil, errors.New("grant: trailing data after the statement")
	}
	if err := sg.Grant.validate(); err != nil {
		return nil, err
	}
	return sg, nil
}

// Encode returns the grant's encoding (what SignGrant returned).
func (sg *SignedGrant) Encode() ([]byte, error) {
	return json.Marshal(grantEnvelope{V: grantVersion, Statement: sg.Statement, Sig: sg.Sig, Chain: sg.Chain})
}

func grantDigest(statement []byte) []byte {
	h := sha256.New()
	h.Write([]byte(grantDomain))
	h.Write(statement)
	return h.Sum(nil)
}

// SignGrant signs g with this node's key and attaches its certificate
// chain. Only a hub signs grants; g.Cluster and g.Issuer must be this
// node's cluster and a node id its certificate binds.
func (t *TLS) SignGrant(g Grant) ([]byte, error) {
	if t.self.Role != "hub" {
		return nil, fmt.Errorf("grant: only a hub signs grants; this node's certificate is for role %s", t.self.Role)
	}
	if g.Cluster != t.opts.Cluster {
		return nil, fmt.Errorf("grant: cluster %q, this node is in cluster %q", g.Cluster, t.opts.Cluster)
	}
	if !t.self.Allows(g.Issuer) {
		return nil, fmt.Errorf("grant: issuer %016x is not bound by this node's certificate", g.Issuer)
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	signer, ok := t.cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || signer.Curve != elliptic.P256() {
		return nil, errors.New("grant: this node's key is not ECDSA P-256")
	}
	st, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand.Reader, grantDigest(st), crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sg := &SignedGrant{Grant: g, Statement: st, Sig: sig, Chain: t.cert.Certificate}
	return sg.Encode()
}

// VerifyGrant decodes b and checks, at now: the signer's chain (this
// cluster's CA, validity, revocation list), that the signer is a hub whose
// certificate binds the issuer, the signature, the cluster, and the
// grant's validity period. It returns the grant and the signer.
func (t *TLS) VerifyGrant(b []byte, now time.Time) (*Grant, Identity, error) {
	g, id, err := t.CheckGrant(b, now)
	if err != nil {
		return nil, id, err
	}
	if why := g.ValidAt(now); why != "" {
		return nil, id, errors.New(why)
	}
	return g, id, nil
}

// CheckGrant is VerifyGrant without the grant's own validity period (the
// caller, who may keep the grant, checks Grant.ValidAt when it uses it);
// the signer's certificate is checked at now.
func (t *TLS) CheckGrant(b []byte, now time.Time) (*Grant, Identity, error) {
	sg, err := DecodeGrant(b)
	if err != nil {
		return nil, Identity{}, err
	}
	id, leaf, err := t.checkAt(sg.Chain, now)
	if err != nil {
		return nil, Identity{}, fmt.Errorf("grant %q: signer refused: %v", sg.Grant.Rule, err)
	}
	if id.Role != "hub" {
		return nil, id, fmt.Errorf("grant %q: signed by %q, whose certificate is for role %s, not hub", sg.Grant.Rule, id.Name, id.Role)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, id, fmt.Errorf("grant %q: the signer's key is not ECDSA P-256", sg.Grant.Rule)
	}
	if !ecdsa.VerifyASN1(pub, grantDigest(sg.Statement), sg.Sig) {
		return nil, id, fmt.Errorf("grant %q: bad signature", sg.Grant.Rule)
	}
	g := &sg.Grant
	if g.Cluster != t.opts.Cluster {
		return nil, id, fmt.Errorf("grant %q: for cluster %q, this node is in cluster %q", g.Rule, g.Cluster, t.opts.Cluster)
	}
	if !id.Allows(g.Issuer) {
		return nil, id, fmt.Errorf("grant %q: issuer %016x is not bound by the signer's certificate %q (%016x/%d)", g.Rule, g.Issuer, id.Name, id.ID, id.Bits)
	}
	return g, id, nil
}
