package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// grantRules returns the write and read rules that a hub of this cluster
// granted node, as compiled permissions (compilePermissions), from the
// grants of the _replicad_grants table that verify (signed by a hub of
// this cluster whose certificate is valid and not revoked) and are valid
// at now: per permission rule the newest-issued such grant, from any hub;
// node gets the rules of every such grant whose nodes match it (it may do
// what any of them allows, as on the hub). ok is false when no such grant
// names node (none was published, they expired, or this node has no TLS):
// the node's permissions are then unknown here, which is not the same as
// unrestricted. The result is shared and read-only. Safe for concurrent
// use; cheap to call per write (compiled rules are memoized until the
// table changes or a grant's validity starts or ends).
func (a *Agent) grantRules(node hlc.NodeID, now time.Time) (*authz.Rules, bool) {
	if a.sec == nil || a.sec.grants == nil {
		return nil, false
	}
	return a.sec.grants.Rules(node, now)
}

// peerFilter returns what this node takes from device peer p (see
// replication.WriteFilter): in a TLS cluster, a device's writes reach
// other nodes unjudged by any hub, so
//
//   - on a hub (which judges every write by its configured rules, the
//     enforcer), mode own takes only the peer's own writes; granted takes
//     every origin's (nil filter);
//   - on a device, with no grant known at all (a cluster without
//     permissions, or a device that has not yet met a hub), only the
//     peer's own writes, unjudged; otherwise mode own takes the peer's own
//     writes within its grant, and granted takes the writes of every
//     origin that has a valid grant, each within it. A write of an origin
//     with no valid grant is refused (not held): it arrives from a hub.
func (s *security) peerFilter(p replication.Peer, isHub bool) *replication.WriteFilter {
	if p.Role != "device" {
		return nil
	}
	mode := s.cfg.Security.PeerRelay
	own := []replication.OriginMatch{{Node: p.Node, Bits: 64}}
	onRefused := s.refusedLogger(p.Node)
	if isHub {
		if mode == config.PeerRelayGranted {
			return nil
		}
		return &replication.WriteFilter{Origins: own, OnRefused: onRefused}
	}
	b := s.grants
	now := b.Now()
	if !b.HasGrants(now) {
		return &replication.WriteFilter{Origins: own, OnRefused: onRefused}
	}
	check := func(w *crdt.Write) string {
		perms, ok := b.Rules(w.Origin, b.Now())
		if !ok {
			return fmt.Sprintf("no valid grant for origin %s", w.Origin)
		}
		if why := perms.Check(w); why != "" {
			return "outside its grant: " + why
		}
		return ""
	}
	f := &replication.WriteFilter{Check: check, OnRefused: onRefused}
	switch mode {
	case config.PeerRelayGranted:
		f.Origins = b.Origins(now)
	default:
		if _, ok := b.Rules(p.Node, now); ok {
			f.Origins = own
		}
	}
	return f
}

// refusedLogger logs refused writes from a peer, at most one line per
// peer every 10 s (with the count of those not logged).
func (s *security) refusedLogger(peer hlc.NodeID) func(w *crdt.Write, reason string) {
	return func(w *crdt.Write, reason string) {
		if ok, n := s.refusedLog.Allow(peer); ok {
			s.log.Warn("write from a device peer refused (not applied, not held: it comes from a hub)", "peer", peer,
				"origin", w.Origin, "seq", w.Seq, "table", w.Table, "id", w.ID, "reason", reason, "refused_since_last_line", n)
		}
	}
}

// refusedLogInterval is how often refused writes of one peer or origin
// are logged at most.
const refusedLogInterval = 10 * time.Second

// publishGrants writes this hub's grant of every configured rule into
// authz.GrantTable where it is missing, differs from the rule, or is past half
// its validity, and clears its grants of rules no longer configured.
func (r *replica) publishGrants(now time.Time) error {
	s := r.a.sec
	if s == nil || s.TLS == nil || s.TLS.Self().Role != "hub" {
		return nil
	}
	validity := s.GrantValidity()
	configured := map[string]bool{}
	field := authz.GrantField(r.node)
	wrote := false
	for _, p := range r.a.cfg.Security.Permissions {
		configured[p.Name] = true
		if !store.ValidID(p.Name) {
			r.a.log.Error("permission rule not published as a grant: its name is not a valid record id", "rule", p.Name)
			continue
		}
		g := secure.Grant{Cluster: r.a.cfg.ClusterID, Rule: p.Name, Nodes: p.Nodes, Write: p.Write, Read: p.Read, ReadSet: p.ReadSet || len(p.Read) > 0,
			IssuedMs: now.UnixMilli(), ExpiresMs: now.Add(validity).UnixMilli(), Issuer: uint64(r.node)}
		if g.Write == nil {
			g.Write = []string{}
		}
		if cur := r.currentGrant(p.Name, field); cur != nil && sameRule(cur, &g) &&
			now.Sub(cur.IssuedAt()) < resignAge(validity) && !now.Before(cur.IssuedAt()) && cur.ExpiresMs-cur.IssuedMs == validity.Milliseconds() {
			continue
		}
		enc, err := s.TLS.SignGrant(g)
		if err != nil {
			return fmt.Errorf("signing the grant of rule %q: %w", p.Name, err)
		}
		if _, err := r.localWrite(authz.GrantTable, p.Name, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(string(enc))}}, false); err != nil {
			return fmt.Errorf("publishing the grant of rule %q: %w", p.Name, err)
		}
		wrote = true
		r.a.log.Info("grant published", "rule", p.Name, "expires", g.ExpiresAt().UTC().Format(time.RFC3339))
	}
	// Rules removed from the configuration: clear this hub's grants.
	after := ""
	for {
		recs, next, err := r.store.Scan(authz.GrantTable, after, 500)
		if err != nil {
			return err
		}
		for _, re := range recs {
			if configured[re.ID] {
				continue
			}
			if _, ok := re.Record.Get(field); !ok {
				continue
			}
			if _, err := r.localWrite(authz.GrantTable, re.ID, []crdt.FieldValue{{Name: field, Value: crdt.Cleared}}, false); err != nil {
				return err
			}
			wrote = true
			r.a.log.Info("grant withdrawn: the rule is no longer configured", "rule", re.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if wrote && s.grants != nil {
		s.grants.Invalidate()
	}
	return nil
}

// resignAge is the age at which a grant is re-signed: with checks every
// validity/8 (watchGrants), a grant is re-signed before half its validity
// has passed.
func resignAge(validity time.Duration) time.Duration { return validity * 3 / 8 }

// currentGrant decodes this hub's grant of rule (nil if none or
// undecodable).
func (r *replica) currentGrant(rule, field string) *secure.Grant {
	rec, err := r.store.Get(authz.GrantTable, rule)
	if err != nil {
		return nil
	}
	v, ok := rec.Get(field)
	if !ok {
		return nil
	}
	x, err := v.Decode()
	raw, isStr := x.(string)
	if err != nil || !isStr {
		return nil
	}
	sg, err := secure.DecodeGrant([]byte(raw))
	if err != nil {
		return nil
	}
	return &sg.Grant
}

func sameRule(a, b *secure.Grant) bool {
	eq := func(x, y []string) bool {
		return strings.Join(x, "\x00") == strings.Join(y, "\x00") && len(x) == len(y)
	}
	return a.Cluster == b.Cluster && a.Rule == b.Rule && a.Issuer == b.Issuer && a.ReadSet == b.ReadSet &&
		eq(a.Nodes, b.Nodes) && eq(a.Write, b.Write) && eq(a.Read, b.Read)
}

// watchGrants re-publishes the grants as they age (a hub with TLS and
// permissions), checking every eighth of their validity.
func (r *replica) watchGrants(done <-chan struct{}) {
	every := r.a.sec.GrantValidity() / 8
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := r.publishGrants(time.Now()); err != nil {
				r.a.log.Error("re-signing the grants failed (they expire if this persists)", "error", err)
			}
		}
	}
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
