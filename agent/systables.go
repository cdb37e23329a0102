package agent

import (
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/replication"
)

// The system tables (replication.SystemPrefix, "_replicad_") hold what the
// agents themselves publish, and replicate to every replica in every
// scope. Nothing writes them through the API (403: guardSystemWrite); a
// hub refuses a write to them from a device outside these rules
// (authz.SystemTables.Refusal, applied by the enforcer as a permission refusal: elided,
// written back over, logged, and the sync error sent to the device).
//
// sysTables is the one statement of who writes what. A hub (any hub:
// arbitrating or not) may write every table here; "hub fields" narrows
// the fields it may set. A device may set only the "device fields" (the
// agent's own code does so through its API, e.g. /v1/duplicates), never
// delete a record. A system table not listed (one a newer version added)
// is written by hubs only.
var sysTables = authz.SystemTables{
	policyTable: {
		About: "the table policies, published by the hubs from their --policy",
	},
	errorTable: {
		About: "the sync errors a hub logged (arbiter, permissions), sent to the nodes they name",
	},
	dedupe.Table: {
		About: "the suspected duplicates the arbitrating hub flags; any replica resolves one through POST /v1/duplicates/{table}/{id}",
		// Resolving a flag (dedupe's API): its status and how it was
		// resolved, never the flag itself (table, id, with, keys, detected).
		DeviceFields: map[string]func(crdt.Value) bool{
			"status": func(v crdt.Value) bool {
				s, ok := authz.StringOf(v)
				return ok && (s == "kept" || s == "merged" || s == "discarded")
			},
			"resolution": func(crdt.Value) bool { return true },
		},
	},
	authz.GrantTable: {
		About: "the permission grants the hubs sign",
		// Each hub publishes its grants in its own field (publishGrants).
		HubField: func(origin hlc.NodeID, field string) bool { return field == authz.GrantField(origin) },
	},
	securityTable: {
		About: "whether the hubs enforce read permissions",
	},
}

// isSystemTable reports whether table is a system table.
func isSystemTable(table string) bool { return strings.HasPrefix(table, replication.SystemPrefix) }

// sysRefusal returns why w may not be written to a system table by its
// origin (a hub when hub), or "" if it may.
func sysRefusal(w *crdt.Write, hub bool) string { return sysTables.Refusal(w, hub) }

// guardSystemWrite refuses (403) an API write to a system table.
func guardSystemWrite(table string) error { return sysTables.Guard(table) }

// vetted reports whether a remote write to a system table comes vetted by
// a hub: sent by a hub peer (which judged it when it took it), or made by
// a hub. A node is a hub if it is this hub, showed itself as a hub in a
// session (its certificate says so, with TLS; remembered across restarts
// by the peer table), or is a gossip member whose metadata says so.
func (r *replica) vetted(from replication.Peer, origin hlc.NodeID) bool {
	if from.Role == "hub" || origin == r.node {
		return true
	}
	if r.n.IsHub(origin) || r.book != nil && r.book.IsHub(origin) {
		return true
	}
	if r.gossip != nil {
		name := origin.String()
		for _, m := range r.gossip.Members() {
			if m.Name == name && string(m.Meta.Role) == "hub" {
				return true
			}
		}
	}
	return false
}

// sysCheck returns why a hub refuses remote write w (sent by from) to a
// system table, or "".
func (r *replica) sysCheck(from replication.Peer, w *crdt.Write) string {
	if !isSystemTable(w.Table) {
		return ""
	}
	if r.vetted(from, w.Origin) {
		return sysRefusal(w, true)
	}
	return sysRefusal(w, false)
}

// admitRecord is the hub's check of a whole record a peer sends: a system
// table's records are taken only from hubs (a record's state carries
// writes no check has seen).
func (r *replica) admitRecord(from replication.Peer, table, id string) bool {
	if !isSystemTable(table) || from.Role == "hub" {
		return true
	}
	r.sysLog.refused(from.Node, from.Node, table, id, "a whole record of a system table is taken from hubs only")
	return false
}

// sysLogger logs refused system-table writes: at most one line per
// origin every 10 s, with the count of those not logged (a device can
// send them as fast as it likes).
type sysLogger struct {
	log hclog.Logger
	by  netguard.KeyedThrottle[hlc.NodeID]
}

func (l *sysLogger) refused(peer, origin hlc.NodeID, table, id, reason string) {
	if ok, n := l.by.Allow(origin); ok {
		l.log.Warn("system-table write refused (not applied; written back over)", "peer", peer, "origin", origin,
			"table", table, "id", id, "reason", reason, "refused_since_last_line", n)
	}
}

// sysJudge is a hub's judge of remote writes to system tables (the
// enforcer's): why the write's origin may not make it, logged
// (rate-limited) and counted when refused.
func (r *replica) sysJudge(from replication.Peer, w *crdt.Write) string {
	reason := r.sysCheck(from, w)
	if reason != "" {
		r.sysLog.refused(from.Node, w.Origin, w.Table, w.ID, reason)
		r.a.metrics.SysRefused()
	}
	return reason
}
