package replicacore

import (
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// JudgeSystemTables makes this hub refuse what a peer may not write to the
// system tables, by the rules every hub judges them by (node.SysTables,
// node.SysJudge), applied by the node's enforcer (node.Enforcer): a
// refused write is elided, written back over (so its origin converges to
// the hub's values) and logged as a sync error of policy "system" sent to
// its origin; a whole system-table record is taken from hubs only. It sets
// ecfg's Admit and AdmitRecord and registers the enforcer's hooks on the
// node; Start first carries out the write-backs a crash left queued.
//
// A write counts as a hub's when the session's peer is a hub, or its
// origin is this node, a node seen as a hub in a session (node.IsHub) or
// a gossip member whose metadata says hub. The agent wires the same judge
// and enforcer itself, with its permission rules, metrics and the hubs
// its peer table remembers (package replica calls this only for a hub
// whose assembly set no Admit).
func (c *Core) JudgeSystemTables(ecfg *replication.Config) {
	log := c.log.Named("systables")
	j := node.NewSysJudge(node.SysTables(), c.Store.NodeID(), c.knownHub, nil, log)
	c.enf = node.NewEnforcer(loggedNode{c.Node, log}, func(from replication.Peer, w *crdt.Write) (string, bool) {
		reason := j.Judge(from, w)
		return reason, reason != ""
	})
	ecfg.Local.Admit = c.enf.Admit
	ecfg.Local.AdmitRecord = j.AdmitRecord
	c.Node.OnApply("systables", c.enf.Hook)
	c.Node.OnRemoteApplied("systables", c.enf.Applied)
}

// knownHub reports whether origin is known as a hub: seen as one in a
// session, or a gossip member whose metadata says so.
func (c *Core) knownHub(origin hlc.NodeID) bool {
	return c.Node.IsHub(origin) || node.GossipHub(c.Gossip, origin)
}

// replay carries out the write-backs a crash left queued (before any
// session).
func (c *Core) replay() {
	if c.enf == nil {
		return
	}
	if err := c.enf.Replay(); err != nil {
		c.log.Error("system tables: write-backs left queued", "error", err)
	}
}

// loggedNode is the node with a logger (node.EnforcerHost).
type loggedNode struct {
	*node.Node
	log hclog.Logger
}

func (n loggedNode) Log() hclog.Logger { return n.log }
