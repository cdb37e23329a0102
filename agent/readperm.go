package agent

import (
	"github.com/replicad/replicad/internal/ext/authz"
)

// Read permissions: the read lists of the permission rules decide what a
// node may read, where data leaves a node, the same way for sync and the
// hub's API (internal/ext/authz: Reads; the API's side:
// online_readperm.go).

// reads returns the replica's read rules (authz.Security.Reads).
func (r *running) reads() *authz.Reads { return r.a.sec.Reads(extHost{Node: r.n, log: r.a.log}) }

// grants returns the publisher of this hub's grants (authz.Publisher:
// nothing is published without TLS or off a hub).
func (r *running) grants() *authz.Publisher {
	return r.a.sec.Publisher(extHost{Node: r.n, log: r.a.log}, r.a.cfg.Security.Permissions)
}
