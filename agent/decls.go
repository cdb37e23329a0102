package agent

import (
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// publishDecls, on a hub, makes the declared indexes and views those of
// its configuration (node.IndexTable, node.ViewTable: a declaration
// removed from the configuration is removed everywhere). Every replica
// applies them: internal/replicacore builds the indexes, the views are
// listed and run through package replica.
func publishDecls(n *node.Node, cfg Config) error {
	defs := make([]store.IndexDef, len(cfg.Indexes))
	for i, x := range cfg.Indexes {
		defs[i] = store.IndexDef{Name: x.Name, Table: x.Table, Fields: x.Fields}
	}
	if err := n.PublishIndexes(defs); err != nil {
		return err
	}
	views := make([]node.ViewDef, len(cfg.Views))
	for i, v := range cfg.Views {
		views[i] = node.ViewDef{Name: v.Name, Table: v.Table, Where: v.Where, Order: v.Order}
	}
	return n.PublishViews(views)
}
