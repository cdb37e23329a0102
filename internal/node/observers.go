package node

import (
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// The observers of sync, in registration order: of each batch of writes
// applied from other replicas once it is committed
// (replication.Local.OnApplied), and of each scope a hub assigns this
// device (replication.Local.OnAssigned).

// OnRemoteApplied registers fn to be told of every committed batch of
// writes applied from peer, after the observers registered before it.
func (n *Node) OnRemoteApplied(name string, fn func(peer hlc.NodeID, ws []*crdt.Write, res *store.Result)) {
	n.remote = append(n.remote, named[func(hlc.NodeID, []*crdt.Write, *store.Result)]{name, fn})
}

// RemoteApplied returns the observer of applied batches
// (replication.Local.OnApplied): the registered ones, in order.
func (n *Node) RemoteApplied() func(peer hlc.NodeID, ws []*crdt.Write, res *store.Result) {
	return func(peer hlc.NodeID, ws []*crdt.Write, res *store.Result) {
		for _, o := range n.remote {
			o.fn(peer, ws, res)
		}
	}
}

// OnAssigned registers fn to be told of every scope a hub assigns this
// node, after the observers registered before it.
func (n *Node) OnAssigned(name string, fn func(sc replication.Scope)) {
	n.assigned = append(n.assigned, named[func(replication.Scope)]{name, fn})
}

// Assigned returns the observer of assigned scopes
// (replication.Local.OnAssigned), nil when none is registered.
func (n *Node) Assigned() func(sc replication.Scope) {
	if len(n.assigned) == 0 {
		return nil
	}
	return func(sc replication.Scope) {
		for _, o := range n.assigned {
			o.fn(sc)
		}
	}
}

// AssignedHooks returns the names of the observers of assigned scopes in
// the order they run.
func (n *Node) AssignedHooks() []string {
	var names []string
	for _, o := range n.assigned {
		names = append(names, o.name)
	}
	return names
}
