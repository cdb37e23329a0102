package authz

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/replication"
)

// RefusedLogInterval is how often refused writes of one peer or origin
// are logged at most.
const RefusedLogInterval = 10 * time.Second

// PeerFilters make the write filters of device peers in a TLS cluster
// (replication.WriteFilter), judged by the verified grants.
type PeerFilters struct {
	grants *Grants
	mode   string // config.PeerRelayOwn ("") or config.PeerRelayGranted
	log    hclog.Logger
	// refused rate-limits the log lines of refused writes per peer.
	refused netguard.KeyedThrottle[hlc.NodeID]
}

// NewPeerFilters returns the filters of device peers by grants, in the
// relay mode of the configuration (Security.PeerRelay).
func NewPeerFilters(grants *Grants, mode string, log hclog.Logger) *PeerFilters {
	f := &PeerFilters{grants: grants, mode: mode, log: log}
	f.refused.Interval = RefusedLogInterval
	return f
}

// For returns what this node takes from device peer p (see
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
func (pf *PeerFilters) For(p replication.Peer, isHub bool) *replication.WriteFilter {
	if p.Role != "device" {
		return nil
	}
	own := []replication.OriginMatch{{Node: p.Node, Bits: 64}}
	onRefused := pf.refusedLogger(p.Node)
	if isHub {
		if pf.mode == config.PeerRelayGranted {
			return nil
		}
		return &replication.WriteFilter{Origins: own, OnRefused: onRefused}
	}
	b := pf.grants
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
	switch pf.mode {
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
// peer every RefusedLogInterval (with the count of those not logged).
func (pf *PeerFilters) refusedLogger(peer hlc.NodeID) func(w *crdt.Write, reason string) {
	return func(w *crdt.Write, reason string) {
		if ok, n := pf.refused.Allow(peer); ok {
			pf.log.Warn("write from a device peer refused (not applied, not held: it comes from a hub)", "peer", peer,
				"origin", w.Origin, "seq", w.Seq, "table", w.Table, "id", w.ID, "reason", reason, "refused_since_last_line", n)
		}
	}
}
