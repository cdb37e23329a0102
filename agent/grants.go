package agent

import (
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
)

// grantRules returns the write and read rules that a hub of this cluster
// granted node (authz.Grants.Rules): ok is false when no valid grant
// names node, or this node has no TLS.
func (a *Agent) grantRules(node hlc.NodeID, now time.Time) (*authz.Rules, bool) {
	if a.sec == nil || a.sec.grants == nil {
		return nil, false
	}
	return a.sec.grants.Rules(node, now)
}

// grants returns the publisher of this hub's grants (authz.Publisher:
// nothing is published without TLS or off a hub).
func (r *running) grants() *authz.Publisher {
	s := r.a.sec
	if s == nil || s.TLS == nil {
		return authz.NewPublisher(nil, nil, nil, "", nil, 0)
	}
	return authz.NewPublisher(extHost{Node: r.n, log: r.a.log}, s.TLS, s.grants, r.a.cfg.ClusterID, r.a.cfg.Security.Permissions, s.GrantValidity())
}

// GrantStatus is one grant of GET /v1/grants: what a hub signed for a
// permission rule, and whether this node takes it now (package api).
type GrantStatus = api.GrantStatus

// grantStatus lists the grants of _replicad_grants as this node judges
// them (TLS only; an empty list otherwise).
func (s *security) grantStatus() []GrantStatus {
	if s == nil || s.grants == nil {
		return []GrantStatus{}
	}
	return s.grants.Status()
}
