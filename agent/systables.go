package agent

import (
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/node"
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
	node.PolicyTable: {
		About: "the table policies, published by the hubs from their --policy",
	},
	node.ErrorTable: {
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
	authz.SecurityTable: {
		About: "whether the hubs enforce read permissions",
	},
	node.IndexTable: {
		About: "the secondary indexes the hubs declare, which every replica builds",
	},
	node.ViewTable: {
		About: "the views the hubs declare, which every replica lists and runs",
	},
}

// guardSystemWrite refuses (403) an API write to a system table.
func guardSystemWrite(table string) error { return sysTables.Guard(table) }

// knownHub reports whether origin is known as a hub (authz.SysJudge): the
// node marked it as one, it showed itself as a hub in a session (its
// certificate says so, with TLS; remembered across restarts by the peer
// table), or it is a gossip member whose metadata says so.
func (r *running) knownHub(origin hlc.NodeID) bool {
	return r.n.IsHub(origin) || extOf[*peers.Ext](r).IsHub(origin) || authz.GossipHub(r.gossip, origin)
}
