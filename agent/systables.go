package agent

import (
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/node"
)

// The system tables (replication.SystemPrefix, "_replicad_") hold what the
// agents themselves publish, and replicate to every replica in every
// scope. Nothing writes them through the API (403: guardSystemWrite); a
// hub refuses a write to them from a device outside these rules
// (node.SystemTables.Refusal, judged by node.SysJudge and applied by the
// enforcer as a permission refusal: elided, written back over, logged,
// and the sync error sent to the device).
//
// sysTables is the one statement of who writes what (node.SysTables:
// the node's tables and those the extensions own, each with its writers,
// e.g. a device resolves a suspected duplicate through /v1/duplicates),
// the same an embedded hub (package replica) judges by. A system table
// not listed (one a newer version added) is written by hubs only.
var sysTables = node.SysTables()

// guardSystemWrite refuses (403) an API write to a system table.
func guardSystemWrite(table string) error { return authz.Guard(table) }

// knownHub reports whether origin is known as a hub (node.SysJudge): the
// node marked it as one, it showed itself as a hub in a session (its
// certificate says so, with TLS; remembered across restarts by the peer
// table), or it is a gossip member whose metadata says so.
func (r *running) knownHub(origin hlc.NodeID) bool {
	return r.n.IsHub(origin) || extOf[*peers.Ext](r).IsHub(origin) || node.GossipHub(r.gossip, origin)
}
