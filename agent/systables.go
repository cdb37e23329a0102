package agent

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/replication"
)

// The system tables (replication.SystemPrefix, "_replicad_") hold what the
// agents themselves publish, and replicate to every replica in every
// scope. Nothing writes them through the API (403: guardSystemWrite); a
// hub refuses a write to them from a device outside these rules
// (sysRefusal, applied by the enforcer as a permission refusal: elided,
// written back over, logged, and the sync error sent to the device).
//
// sysTables is the one statement of who writes what. A hub (any hub:
// arbitrating or not) may write every table here; "hub fields" narrows
// the fields it may set. A device may set only the "device fields" (the
// agent's own code does so through its API, e.g. /v1/duplicates), never
// delete a record. A system table not listed (one a newer version added)
// is written by hubs only.
var sysTables = map[string]sysWriters{
	policyTable: {
		about: "the table policies, published by the hubs from their --policy",
	},
	errorTable: {
		about: "the sync errors a hub logged (arbiter, permissions), sent to the nodes they name",
	},
	dedupe.Table: {
		about: "the suspected duplicates the arbitrating hub flags; any replica resolves one through POST /v1/duplicates/{table}/{id}",
		// Resolving a flag (resolveDuplicate): its status and how it was
		// resolved, never the flag itself (table, id, with, keys, detected).
		deviceFields: map[string]func(crdt.Value) bool{
			"status": func(v crdt.Value) bool {
				s, ok := stringOf(v)
				return ok && (s == "kept" || s == "merged" || s == "discarded")
			},
			"resolution": func(crdt.Value) bool { return true },
		},
	},
	grantTable: {
		about: "the permission grants the hubs sign",
		// Each hub publishes its grants in its own field (publishGrants).
		hubField: func(origin hlc.NodeID, field string) bool { return field == grantField(origin) },
	},
	securityTable: {
		about: "whether the hubs enforce read permissions",
	},
}

// sysWriters says who writes one system table.
type sysWriters struct {
	about string
	// hubField, if set, is the fields a hub of id origin may set (and it
	// may not delete a record); nil: every field, and deletes.
	hubField func(origin hlc.NodeID, field string) bool
	// deviceFields are the fields a device may set, each with the values
	// it may set them to; nil: none.
	deviceFields map[string]func(crdt.Value) bool
}

func stringOf(v crdt.Value) (string, bool) {
	x, err := v.Decode()
	s, ok := x.(string)
	return s, err == nil && ok
}

// isSystemTable reports whether table is a system table.
func isSystemTable(table string) bool { return strings.HasPrefix(table, replication.SystemPrefix) }

// sysRefusal returns why w may not be written to a system table by its
// origin (a hub when hub), or "" if it may (or w is not to a system
// table).
func sysRefusal(w *crdt.Write, hub bool) string {
	if !isSystemTable(w.Table) {
		return ""
	}
	st, known := sysTables[w.Table]
	who := "device"
	if hub {
		who = "hub"
	}
	switch {
	case hub && (!known || st.hubField == nil):
		return ""
	case hub:
		if w.Delete {
			return fmt.Sprintf("hub %s may not delete records of system table %s (%s)", w.Origin, w.Table, st.about)
		}
		var bad []string
		for _, f := range w.Fields {
			if !st.hubField(w.Origin, f.Name) {
				bad = append(bad, f.Name)
			}
		}
		if len(bad) == 0 {
			return ""
		}
		return fmt.Sprintf("hub %s may not write field(s) %s of system table %s (%s)", w.Origin, strings.Join(bad, ", "), w.Table, st.about)
	case !known:
		return fmt.Sprintf("%s %s may not write system table %s (hubs only)", who, w.Origin, w.Table)
	case w.Delete:
		return fmt.Sprintf("%s %s may not delete records of system table %s (%s)", who, w.Origin, w.Table, st.about)
	case len(st.deviceFields) == 0:
		return fmt.Sprintf("%s %s may not write system table %s (%s; hubs only)", who, w.Origin, w.Table, st.about)
	}
	var bad []string
	for _, f := range w.Fields {
		if ok := st.deviceFields[f.Name]; ok == nil || !ok(f.Value) {
			bad = append(bad, f.Name)
		}
	}
	if len(bad) == 0 && len(w.Fields) > 0 {
		return ""
	}
	sort.Strings(bad)
	allowed := make([]string, 0, len(st.deviceFields))
	for f := range st.deviceFields {
		allowed = append(allowed, f)
	}
	sort.Strings(allowed)
	return fmt.Sprintf("%s %s may not write field(s) %s of system table %s (%s; a device sets only %s)", who, w.Origin,
		strings.Join(bad, ", "), w.Table, st.about, strings.Join(allowed, ", "))
}

// guardSystemWrite is the API's refusal of a write to a system table
// (403): only the agent's own code writes them.
func guardSystemWrite(table string) error {
	if !isSystemTable(table) {
		return nil
	}
	about := "a table the agents keep"
	if st, ok := sysTables[table]; ok {
		about = st.about
	}
	return httpapi.Errorf(http.StatusForbidden, "table %s is a system table (%s): only replicad itself writes it, not the API", table, about)
}

// vetted reports whether a remote write to a system table comes vetted by
// a hub: sent by a hub peer (which judged it when it took it), or made by
// a hub. A node is a hub if it is this hub, showed itself as a hub in a
// session (its certificate says so, with TLS; remembered across restarts
// by the peer table), or is a gossip member whose metadata says so.
func (r *replica) vetted(from replication.Peer, origin hlc.NodeID) bool {
	if from.Role == "hub" || origin == r.node {
		return true
	}
	if r.hubs.isHub(origin) || r.book != nil && r.book.isHub(origin) {
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
		r.a.metrics.sysRefused.Inc()
	}
	return reason
}
