package node

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Record views: a record as the API shows it (and, for a restricted
// reader, as its read limit narrows it first: the caller's).

// ExistsField names, in conflicts, a delete concurrent with an update of
// the record (manual policy): its candidates are the update (value null)
// and the delete ("deleted": true); picking one keeps or deletes the
// record.
const ExistsField = "_exists"

// Candidates are the live candidates es as the API shows them.
func Candidates(es []crdt.Entry) []api.Candidate {
	out := make([]api.Candidate, 0, len(es))
	for _, e := range es {
		c := api.Candidate{Node: e.Origin.String(), HLC: e.TS.String(), Time: time.UnixMilli(e.TS.Wall()).UTC().Format(time.RFC3339Nano), Value: json.RawMessage("null")}
		if e.Delete {
			c.Deleted = true
		} else {
			c.Value = JSONValue(e.Value)
		}
		out = append(out, c)
	}
	return out
}

// View is record table/id as the API shows it: its visible fields, its
// conflicts (manual tables) with their bases when known here, whether a
// change is still pending the arbiter's decision.
func (n *Node) View(table, id string, rec *crdt.Record) api.Record {
	out := api.Record{Table: table, ID: id, Fields: map[string]json.RawMessage{}, Conflicts: map[string][]api.Candidate{}, Deleted: !rec.Exists()}
	rec.Visible(func(name string, v crdt.Value) { out.Fields[name] = JSONValue(v) })
	k := n.PolicyOf(table)
	for _, c := range policy.Conflicts(k, rec) {
		name := c.Field
		if name == "" {
			name = ExistsField
		}
		out.Conflicts[name] = Candidates(c.Candidates)
		if c.Field != "" {
			if b := n.BaseOf(table, id, c.Field); b != nil {
				if out.Bases == nil {
					out.Bases = map[string]*api.Candidate{}
				}
				out.Bases[name] = b
			}
		}
	}
	out.Pending = n.Pending(k, rec)
	return out
}

// BaseOf is the value a conflicted field's candidates started from, if
// known here (recorded by the write pipeline).
func (n *Node) BaseOf(table, id, field string) *api.Candidate {
	e, ok, err := n.st.Base(table, id, field)
	if err != nil || !ok {
		return nil
	}
	c := Candidates([]crdt.Entry{e})[0]
	return &c
}

// hubView remembers what the hubs this node syncs with hold (from their
// Have at each session), to tell which changes are still tentative.
type hubView struct {
	mu   sync.Mutex
	hubs map[hlc.NodeID]map[hlc.NodeID]store.Held
}

// ObserveHubs is told what a peer holds at a session's start
// (replication.Local.OnPeerHave); a hub's holdings are remembered.
func (n *Node) ObserveHubs(p replication.Peer, have map[hlc.NodeID]store.Held) {
	if p.Role != "hub" {
		return
	}
	h := &n.hubs
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hubs == nil {
		h.hubs = map[hlc.NodeID]map[hlc.NodeID]store.Held{}
	}
	h.hubs[p.Node] = have
}

// IsHub reports whether n showed itself as a hub in a session with this
// node.
func (n *Node) IsHub(id hlc.NodeID) bool {
	h := &n.hubs
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.hubs[id]
	return ok
}

// Pending reports whether rec, under policy k, shows a change no hub is
// known to hold yet (the arbiter has not decided it). On a hub nothing is
// pending: it decides as it applies.
func (n *Node) Pending(k policy.Kind, rec *crdt.Record) bool {
	if !k.NeedsArbiter() || n.hub {
		return false
	}
	h := &n.hubs
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

// StatsView is a session's or a round's figures as the API shows them.
func StatsView(s replication.Stats) api.Stats {
	return api.Stats{WritesSent: s.WritesSent, WritesApplied: s.WritesApplied, Duplicates: s.Duplicates, Parked: s.Parked,
		RecordsFetched: s.RecordsFetched, BytesSent: s.BytesSent, BytesReceived: s.BytesReceived}
}
