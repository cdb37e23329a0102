package node

import (
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/replication"
)

// RefusedLogInterval is how often refused writes of one origin (or peer)
// are logged, at most, with the count of those not logged.
const RefusedLogInterval = 10 * time.Second

// SysJudge is a hub's check of what peers send to the system tables: the
// writes by the SystemTables (Judge, run by the Enforcer) and whole
// records (replication's AdmitRecord). Refusals are logged, at most one
// line per origin every RefusedLogInterval with the count of those not
// logged (a device can send them as fast as it likes).
type SysJudge struct {
	tables SystemTables
	self   hlc.NodeID
	// knownHub reports whether a node is known as a hub (beyond the peer's
	// role and this node).
	knownHub  func(hlc.NodeID) bool
	onRefused func() // counts a refused write
	log       hclog.Logger
	by        netguard.KeyedThrottle[hlc.NodeID]
}

// NewSysJudge returns the judge of hub self by tables; knownHub says
// whether a node is a hub (seen as one in a session or in gossip),
// onRefused (nil: none) counts each refused write.
func NewSysJudge(tables SystemTables, self hlc.NodeID, knownHub func(hlc.NodeID) bool, onRefused func(), log hclog.Logger) *SysJudge {
	j := &SysJudge{tables: tables, self: self, knownHub: knownHub, onRefused: onRefused, log: log}
	j.by.Interval = RefusedLogInterval
	return j
}

// vetted reports whether a remote write to a system table comes vetted by
// a hub: sent by a hub peer (which judged it when it took it), or made by
// a hub (this one, or one knownHub names).
func (j *SysJudge) vetted(from replication.Peer, origin hlc.NodeID) bool {
	return from.Role == "hub" || origin == j.self || j.knownHub != nil && j.knownHub(origin)
}

// Judge returns why w's origin may not make it (sent by from), logged
// (rate-limited) and counted when refused; "" if it may.
func (j *SysJudge) Judge(from replication.Peer, w *crdt.Write) string {
	if !replication.IsSystemTable(w.Table) {
		return ""
	}
	reason := j.tables.Refusal(w, j.vetted(from, w.Origin))
	if reason != "" {
		j.refused(from.Node, w.Origin, w.Table, w.ID, reason)
		if j.onRefused != nil {
			j.onRefused()
		}
	}
	return reason
}

// AdmitRecord is the hub's check of a whole record a peer sends: a system
// table's records are taken only from hubs (a record's state carries
// writes no check has seen).
func (j *SysJudge) AdmitRecord(from replication.Peer, table, id string) bool {
	if !replication.IsSystemTable(table) || from.Role == "hub" {
		return true
	}
	j.refused(from.Node, from.Node, table, id, "a whole record of a system table is taken from hubs only")
	return false
}

func (j *SysJudge) refused(peer, origin hlc.NodeID, table, id, reason string) {
	if ok, n := j.by.Allow(origin); ok {
		j.log.Warn("system-table write refused (not applied; written back over)", "peer", peer, "origin", origin,
			"table", table, "id", id, "reason", reason, "refused_since_last_line", n)
	}
}

// GossipHub reports whether origin is a member of g (nil: no gossip)
// whose metadata says it is a hub (a source of NewSysJudge's knownHub).
func GossipHub(g *gossip.Gossip, origin hlc.NodeID) bool {
	if g == nil {
		return false
	}
	name := origin.String()
	for _, m := range g.Members() {
		if m.Name == name && string(m.Meta.Role) == "hub" {
			return true
		}
	}
	return false
}
