package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/replicad/replicad/api"
)

// StatusFigures is what GET /v1/status reports of the running replica
// beyond its store: the figures the assembly gathers from the sync
// engine, gossip, the peer table, the listeners and the extensions.
type StatusFigures interface {
	// Online is whether sync and gossip are on (POST /v1/connectivity).
	Online() bool
	// SyncAddr and GossipAddr are the listeners' addresses.
	SyncAddr() string
	GossipAddr() string
	// GossipMembers is the number of alive members; ok is false when
	// gossip does not run.
	GossipMembers() (alive int, ok bool)
	// Peers is every node that synced with this one, per direction.
	Peers() []api.Peer
	// TableSync is the last successful session that exchanged table
	// (zero: never).
	TableSync(table string) time.Time
	// PendingOutbound is the local writes not yet known to be held by a
	// hub; ok is false where the figure means nothing (a hub that syncs
	// with no other hub).
	PendingOutbound() (n uint64, ok bool)
	// Counts are the open conflicts, the sync errors not retried (those
	// a policy overrode apart) and the parked writes.
	Counts() (conflicts, syncErrors, overridden, parked int)
	// Drafts is the number of drafts kept on this node.
	Drafts() int
	// HubAPI is where online reads go ("" unknown or a hub).
	HubAPI() string
	// Sync is the progress of a sync asked for through the API.
	Sync() api.SyncState
}

// StatusRoute serves GET /v1/status (api.Status) of the current replica
// (its node and figures). The fields other than Cur are the agent's
// configuration, its API listener's address and its start.
type StatusRoute struct {
	Cur       Current
	APIAddr   func() string
	Role      string
	ClusterID string
	Hubs      []string
	Policies  map[string]string
	Insecure  bool // sync off loopback without mutual TLS
	Started   time.Time
	// System tells the system tables, left out of the tables listed.
	System func(table string) bool
}

const (
	pendingNote = "local writes not yet known to be held by a hub: counted from the start of the last successful session with a hub; after a restart every earlier write counts until the first such session"
	policyNote  = "a hub arbitrates client-wins and server-wins tables (unless --no-arbiter); sync errors are the changes it rejected (server-wins, permissions), overridden the values lww and client-wins kept out (logged, not alarms); conflicts list the concurrent candidates of a field on manual tables"
)

// Get is GET /v1/status. Its answer is a map so that the figures that
// mean nothing here (pending_outbound on a hub without hubs, hub_api,
// gossip_members) are left out.
func (s StatusRoute) Get(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Cur.With(func(r Held) (any, error) {
		n, f := r.Node, r.Figures()
		st := n.Store()
		out := map[string]any{}
		out["node"] = n.ID().String()
		out["role"] = s.Role
		out["cluster_id"] = s.ClusterID
		out["online"] = f.Online()
		out["api_addr"] = s.APIAddr()
		out["sync_addr"] = f.SyncAddr()
		out["gossip_addr"] = f.GossipAddr()
		hubs := s.Hubs
		if hubs == nil {
			hubs = []string{}
		}
		out["hubs"] = hubs
		out["uptime_s"] = int64(time.Since(s.Started).Seconds())
		// GET /v1/peers adds pending writes and sync errors per peer.
		out["peers"] = f.Peers()
		// Per-table last sync: the last successful session, served or
		// dialed, that exchanged the table (the peer's scope listed it).
		tables, err := st.Tables()
		if err != nil {
			return nil, err
		}
		tj := []map[string]string{}
		for _, t := range tables {
			if s.System != nil && s.System(t) {
				continue
			}
			tj = append(tj, map[string]string{"table": t, "last_sync": timeStr(f.TableSync(t)), "policy": string(n.PolicyOf(t))})
		}
		out["tables"] = tj
		if p, ok := f.PendingOutbound(); ok {
			out["pending_outbound"] = p
			out["pending_outbound_note"] = pendingNote
		}
		conflicts, syncErrors, overridden, parked := f.Counts()
		out["conflicts"] = conflicts
		out["sync_errors"] = syncErrors // rejected changes, not retried
		out["overridden"] = overridden  // values a policy overrode (lww, client-wins), not retried
		out["parked"] = parked
		out["policies"] = s.Policies
		out["policy_note"] = policyNote
		out["feed_head"] = strconv.FormatUint(st.FeedHead(), 10)
		out["encrypted_at_rest"] = st.Encrypted()
		out["insecure"] = s.Insecure
		out["drafts"] = f.Drafts()
		if base := f.HubAPI(); base != "" {
			out["hub_api"] = base
		}
		if u, err := st.DiskUsage(); err != nil {
			out["disk"] = map[string]any{"error": err.Error()}
		} else {
			out["disk"] = u
		}
		out["sync"] = f.Sync()
		if ix := n.IndexStatus(); len(ix) > 0 {
			out["indexes"] = ix // declared (node.IndexTable) and built here
		}
		if alive, ok := f.GossipMembers(); ok {
			out["gossip_members"] = alive
		}
		return out, nil
	})
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
