package agent

import (
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// hubView remembers what the hubs this node syncs with hold (from their
// Have at each session), to tell which changes are still tentative.
type hubView struct {
	mu   sync.Mutex
	hubs map[hlc.NodeID]map[hlc.NodeID]store.Held
}

func (h *hubView) observe(p replication.Peer, have map[hlc.NodeID]store.Held) {
	if p.Role != "hub" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hubs == nil {
		h.hubs = map[hlc.NodeID]map[hlc.NodeID]store.Held{}
	}
	h.hubs[p.Node] = have
}

// isHub reports whether n showed itself as a hub in a session with this
// node.
func (h *hubView) isHub(n hlc.NodeID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.hubs[n]
	return ok
}

// pending reports whether rec, under policy k, shows a change no hub is
// known to hold yet (the arbiter has not decided it). On a hub nothing is
// pending: it decides as it applies.
func (r *replica) pending(k policy.Kind, rec *crdt.Record) bool {
	if !k.NeedsArbiter() || r.a.cfg.Role == "hub" {
		return false
	}
	h := r.hubs
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hubs) == 0 {
		return policy.Pending(k, rec, 0, func(crdt.Dot) bool { return false })
	}
	for id, have := range h.hubs {
		if !policy.Pending(k, rec, id, func(d crdt.Dot) bool { return have[d.Node].Contains(d.Seq) }) {
			return false
		}
	}
	return true
}
