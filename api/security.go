package api

import "time"

// SecurityStatus is the answer of GET /v1/security.
type SecurityStatus struct {
	APIToken bool          `json:"api_token"` // the API requires the bearer token
	APITLS   bool          `json:"api_tls"`
	TLS      *TLSStatus    `json:"tls,omitempty"`
	Gossip   *GossipStatus `json:"gossip_encryption,omitempty"`
	AtRest   bool          `json:"encrypted_at_rest"` // the store's values are encrypted at rest
	// Insecure: sync is served off loopback without mutual TLS.
	Insecure bool `json:"insecure"`
}

// TLSStatus describes the node's certificate.
type TLSStatus struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	NodeIDs  string    `json:"node_ids"` // id/bits
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
}

// GossipStatus lists the gossip keyring by fingerprint; it is also the
// answer of POST /v1/gossip/keys.
type GossipStatus struct {
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"`
}

// GossipKeyRequest is the body of POST /v1/gossip/keys.
type GossipKeyRequest struct {
	Op  string `json:"op"`  // install, use, remove
	Key string `json:"key"` // base64
}

// GrantStatus is one grant of GET /v1/grants (a JSON array of them):
// what a hub signed for a permission rule, and whether this node takes
// it now.
type GrantStatus struct {
	Rule      string    `json:"rule"`
	Issuer    string    `json:"issuer,omitempty"` // the signing hub's node id
	Nodes     []string  `json:"nodes,omitempty"`
	Write     []string  `json:"write,omitempty"`
	Read      []string  `json:"read,omitempty"`
	ReadSet   bool      `json:"read_set,omitempty"`
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// In force: it verified, is valid now and is the newest of its rule.
	InForce bool `json:"in_force"`
	// Refused says why a grant record did not verify.
	Refused string `json:"refused,omitempty"`
}
