package agent

import (
	"github.com/replicad/replicad/crdt"
)

// registerHooks plugs the features into the node's write pipeline, in
// this fixed order (ARCHITECTURE.md, "The write pipeline"):
//
//   - every local write: conflict bases (the node), duplicate tracking;
//   - every applied batch: conflict bases (the node), duplicate tracking,
//     the permission write-backs, then the arbiter's decisions (a hub
//     that arbitrates) or the mirrored sync errors (any other node);
//   - after every local write: the pending count, the metrics, the change
//     feed, the live queries (registered by replica.Open after these),
//     then the engine (the node);
//   - after every committed applied batch: the grants' cache (with TLS),
//     the permission write-backs, the replica's own bookkeeping
//     (metrics, parked-write refusals, the change feed), then the live
//     queries (replica.Open).
//
// It runs in replicaopt.Options.Build, before the engine exists; the
// scope observers (stripped, profile) are registered earlier, in
// Configure (scopes.go).
func (r *running) registerHooks() {
	r.n.OnLocalWrite("dedupe", r.dupes.TrackLocal)
	r.n.OnApply("dedupe", r.dupes.TrackApplied)
	if r.enf != nil {
		r.n.OnApply("permissions", r.enf.Hook)
	}
	if r.arb != nil {
		r.n.OnApply("arbiter", r.arb.Hook)
	} else {
		r.n.OnApply("syncerrors", r.n.MirrorSyncErrors)
	}
	if s := r.a.sec; s != nil && s.TLS != nil {
		r.n.OnRemoteApplied("grants", s.Grants.Applied)
	}
	if r.enf != nil {
		r.n.OnRemoteApplied("permissions", r.enf.Applied)
	}
	r.n.OnRemoteApplied("replica", r.onApplied) // metrics, parked-write refusals, the feed
	r.n.OnWritten("outbound", func(w *crdt.Write) { r.out.Wrote(w.Seq) })
	r.n.OnWritten("metrics", func(*crdt.Write) { r.a.metrics.LocalWrite() })
	r.n.OnWritten("feed", func(*crdt.Write) { r.a.feed.Notify() })
}
