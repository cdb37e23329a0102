package agent

import "github.com/replicad/replicad/replica"

// declared is a hub's configured indexes and views as the replica
// publishes them at start (replica.Config.Indexes and Views: system
// tables _replicad_index and _replicad_view; a declaration removed from
// the configuration is removed everywhere, another hub's are left). Every replica applies them:
// internal/replicacore builds the indexes, package replica lists and
// runs the views.
func declared(cfg Config) ([]replica.Index, []replica.View) {
	var ixs []replica.Index
	for _, x := range cfg.Indexes {
		ixs = append(ixs, replica.Index{Name: x.Name, Table: x.Table, Fields: x.Fields})
	}
	var views []replica.View
	for _, v := range cfg.Views {
		views = append(views, replica.View{Name: v.Name, Table: v.Table, Where: v.Where, Order: v.Order})
	}
	return ixs, views
}
