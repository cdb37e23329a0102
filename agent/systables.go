package agent

import (
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/peers"
)

// The system tables (replication.SystemPrefix, "_replicad_") hold what the
// agents themselves publish, and replicate to every replica in every
// scope. Nothing writes them through the API (403: guardSystemWrite); a
// hub refuses a write to them from a device outside these rules
// (authz.SystemTables.Refusal, applied by the enforcer as a permission refusal: elided,
// written back over, logged, and the sync error sent to the device).
//
// sysTables is the one statement of who writes what (authz.Tables: the
// node's and authz's tables) with the tables of the other extensions,
// each stating its own writers: a device resolves a suspected duplicate
// (dedupe.DeviceFields, through /v1/duplicates). A system table not
// listed (one a newer version added) is written by hubs only.
var sysTables = authz.Tables(authz.SystemTables{
	dedupe.Table: {About: dedupe.TableAbout, DeviceFields: dedupe.DeviceFields},
})

// guardSystemWrite refuses (403) an API write to a system table.
func guardSystemWrite(table string) error { return sysTables.Guard(table) }

// knownHub reports whether origin is known as a hub (authz.SysJudge): the
// node marked it as one, it showed itself as a hub in a session (its
// certificate says so, with TLS; remembered across restarts by the peer
// table), or it is a gossip member whose metadata says so.
func (r *running) knownHub(origin hlc.NodeID) bool {
	return r.n.IsHub(origin) || extOf[*peers.Ext](r).IsHub(origin) || authz.GossipHub(r.gossip, origin)
}
