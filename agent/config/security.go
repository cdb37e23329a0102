package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/replicad/replicad/secure"
	"github.com/spf13/pflag"
)

const (
	// PeerRelayOwn: a device peer's session delivers only that device's
	// own writes (the default).
	PeerRelayOwn = "own"
	// PeerRelayGranted: a device peer may relay other origins' writes,
	// each judged by its origin's grant.
	PeerRelayGranted = "granted"
)

// API authentication modes (--api-auth).
const (
	// APIAuthAuto requires the bearer token when the API is not bound to
	// loopback (the default).
	APIAuthAuto = "auto"
	// APIAuthToken always requires the bearer token.
	APIAuthToken = "token"
)

// SecurityConfig is the agent's security configuration: the API's bearer
// token, mutual TLS for sync streams (and the API when it is not on
// loopback), and gossip encryption. Package secure does the work.
type SecurityConfig struct {
	// APIAuth is APIAuthAuto (default; "" means it) or APIAuthToken. The token is
	// generated on first start in <data-dir>/api-token (mode 0600).
	APIAuth string
	// TLSCA, TLSCert, TLSKey: the cluster CA and this node's certificate
	// and key (`replicad tls ...`). All three or none: with them, sync
	// streams are mutual TLS and the node id is bound to the certificate.
	TLSCA, TLSCert, TLSKey string
	// TLSRevoked is the revocation list (serials), re-read when it
	// changes.
	TLSRevoked string
	// GossipKeyring is a keyring file (base64 keys, the primary first):
	// gossip is encrypted with memberlist's keyring. Rotations through the
	// API rewrite it.
	GossipKeyring string
	// Permissions restrict what nodes may write (permissions.go); config
	// file only (permission blocks).
	Permissions []Permission
	// GrantValidity is how long the grants a hub signs for its permission
	// rules are valid (grants.go; default secure.DefaultGrantValidity);
	// they are re-signed before half of it has passed.
	GrantValidity time.Duration
	// Insecure lets a node serve sync off loopback without mutual TLS:
	// anyone who reaches the sync port can then claim any node id and
	// role. Without it such a node refuses to start. A sync address on
	// loopback needs neither.
	Insecure bool
	// PeerRelay is PeerRelayOwn (default; "" means it) or
	// PeerRelayGranted: whether device peers may relay other origins'
	// writes (grants.go).
	PeerRelay string
	// Guard: the API's Host names, cross-site origins, timeouts and
	// connection bounds, the sync listener's bound, the parked-write cap
	// (httpguard.go).
	Guard GuardConfig
}

// TLSOn reports whether sync runs over mutual TLS.
func (s *SecurityConfig) TLSOn() bool { return s.TLSCert != "" }

// InsecureSync reports whether cfg serves sync off loopback without
// mutual TLS (allowed only with Insecure).
func InsecureSync(cfg *Config) bool {
	return !cfg.Security.TLSOn() && !secure.IsLoopback(cfg.SyncAddr)
}

// CheckInsecure refuses to serve sync off loopback without mutual TLS
// unless told Insecure.
func CheckInsecure(cfg *Config) error {
	if InsecureSync(cfg) && !cfg.Security.Insecure {
		return keyErr("sync_addr", "%s is not a loopback address: serving sync there needs mutual TLS (tls_ca, tls_cert, tls_key), or insecure = true to serve it unauthenticated (anyone reaching the port can then claim to be any node)", cfg.SyncAddr)
	}
	return nil
}

func (s *SecurityConfig) validate() error {
	if s.APIAuth != "" && s.APIAuth != APIAuthAuto && s.APIAuth != APIAuthToken {
		return keyErr("api_auth", "%q: want %s or %s", s.APIAuth, APIAuthAuto, APIAuthToken)
	}
	n := 0
	for _, f := range []string{s.TLSCA, s.TLSCert, s.TLSKey} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return keyErr("tls_cert", "tls_ca, tls_cert and tls_key go together (all three or none)")
	}
	if s.TLSRevoked != "" && n == 0 {
		return keyErr("tls_revoked", "needs tls_ca, tls_cert and tls_key")
	}
	if s.PeerRelay != "" && s.PeerRelay != PeerRelayOwn && s.PeerRelay != PeerRelayGranted {
		return keyErr("peer_relay", "%q: want %s or %s", s.PeerRelay, PeerRelayOwn, PeerRelayGranted)
	}
	if s.GrantValidity != 0 && (s.GrantValidity < time.Second || s.GrantValidity > secure.MaxGrantValidity) {
		return keyErr("grant_validity", "%s: want 1s to %s", s.GrantValidity, secure.MaxGrantValidity)
	}
	if err := s.Guard.validate(); err != nil {
		return err
	}
	return CheckPermissions(s.Permissions)
}

// securityFile holds the HCL keys of SecurityConfig (part of fileConfig).
type securityFile struct {
	APIAuth       *string     `hcl:"api_auth,optional"`
	TLSCA         *string     `hcl:"tls_ca,optional"`
	TLSCert       *string     `hcl:"tls_cert,optional"`
	TLSKey        *string     `hcl:"tls_key,optional"`
	TLSRevoked    *string     `hcl:"tls_revoked,optional"`
	GossipKeyring *string     `hcl:"gossip_keyring,optional"`
	PeerRelay     *string     `hcl:"peer_relay,optional"`
	Insecure      *bool       `hcl:"insecure,optional"`
	GrantValidity *string     `hcl:"grant_validity,optional"`
	Permissions   []permBlock `hcl:"permission,block"`
	Rest          hcl.Body    `hcl:",remain"` // the guard keys (guardFile)
}

// loadSecurityFile decodes the security keys of a config file (the keys
// fileConfig leaves) over s; unknown keys are errors.
func loadSecurityFile(body hcl.Body, s *SecurityConfig) error {
	var f securityFile
	if diags := gohcl.DecodeBody(body, nil, &f); diags.HasErrors() {
		return diagErr(diags)
	}
	f.apply(s)
	if err := loadGuardFile(f.Rest, &s.Guard); err != nil {
		return err
	}
	if f.Insecure != nil {
		s.Insecure = *f.Insecure
	}
	if f.GrantValidity != nil {
		d, err := time.ParseDuration(*f.GrantValidity)
		if err != nil {
			return keyErr("grant_validity", "%q: %v", *f.GrantValidity, err)
		}
		s.GrantValidity = d
	}
	if len(f.Permissions) > 0 {
		s.Permissions = nil
		for _, p := range f.Permissions {
			perm := Permission{Name: p.Name, Nodes: p.Nodes, Write: p.Write}
			if p.Read != nil {
				perm.Read, perm.ReadSet = *p.Read, true
			}
			s.Permissions = append(s.Permissions, perm)
		}
	}
	return nil
}

func (f *securityFile) apply(s *SecurityConfig) {
	for _, p := range []struct {
		v   *string
		dst *string
	}{{f.APIAuth, &s.APIAuth}, {f.TLSCA, &s.TLSCA}, {f.TLSCert, &s.TLSCert}, {f.TLSKey, &s.TLSKey}, {f.TLSRevoked, &s.TLSRevoked}, {f.GossipKeyring, &s.GossipKeyring}, {f.PeerRelay, &s.PeerRelay}} {
		if p.v != nil {
			*p.dst = *p.v
		}
	}
}

func addSecurityFlags(fs *pflag.FlagSet, s *SecurityConfig) {
	fs.StringVar(&s.APIAuth, "api-auth", APIAuthAuto, "API bearer token: auto (required unless the API is on loopback) or token (always); the token is <data-dir>/api-token")
	fs.StringVar(&s.TLSCA, "tls-ca", "", "the cluster CA certificate `FILE` (replicad tls ca create): sync over mutual TLS")
	fs.StringVar(&s.TLSCert, "tls-cert", "", "this node's certificate `FILE` (replicad tls cert create NAME)")
	fs.StringVar(&s.TLSKey, "tls-key", "", "this node's private key `FILE` (mode 0600)")
	fs.StringVar(&s.TLSRevoked, "tls-revoked", "", "revoked serials `FILE`, re-read when it changes")
	fs.StringVar(&s.GossipKeyring, "gossip-keyring", "", "gossip keyring `FILE` (replicad tls gossip-key create): encrypt gossip")
	fs.StringVar(&s.PeerRelay, "peer-relay", PeerRelayOwn, "with TLS, writes taken from a device peer: own (only the peer's own writes, within its grant) or granted (any origin's, each within its origin's grant)")
	fs.BoolVar(&s.Insecure, "insecure", false, "serve sync off loopback without mutual TLS: anyone reaching the sync port can claim any node id (without it such a node refuses to start)")
	fs.DurationVar(&s.GrantValidity, "grant-validity", secure.DefaultGrantValidity, "on a hub with TLS and permissions: validity of the signed grants it publishes (re-signed at half of it)")
	addGuardFlags(fs, &s.Guard)
}

// applySecurityFlag copies a security flag that was set; it reports
// whether name is one.
func applySecurityFlag(name string, dst, src *SecurityConfig) bool {
	switch name {
	case "api-auth":
		dst.APIAuth = src.APIAuth
	case "tls-ca":
		dst.TLSCA = src.TLSCA
	case "tls-cert":
		dst.TLSCert = src.TLSCert
	case "tls-key":
		dst.TLSKey = src.TLSKey
	case "tls-revoked":
		dst.TLSRevoked = src.TLSRevoked
	case "gossip-keyring":
		dst.GossipKeyring = src.GossipKeyring
	case "peer-relay":
		dst.PeerRelay = src.PeerRelay
	case "grant-validity":
		dst.GrantValidity = src.GrantValidity
	case "insecure":
		dst.Insecure = src.Insecure
	default:
		return applyGuardFlag(name, &dst.Guard, &src.Guard)
	}
	return true
}
