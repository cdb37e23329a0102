package httpapi

import (
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// PeerTable is what the figures read of the peer table
// (internal/ext/peers.Book).
type PeerTable interface {
	Rows(partners []replication.PartnerStatus, st *store.Store, full bool) []api.Peer
	TableSync(table string) time.Time
	Counts() map[string]int
}

// Figures gathers the status's figures (StatusFigures) and the metrics'
// of one replica from its parts; the assembly fills it for the current
// replica.
type Figures struct {
	Node   *node.Node
	Eng    *replication.Engine
	Gossip *gossip.Gossip // nil: no gossip
	SyncLn net.Listener
	Out    *node.Outbound // own writes no hub is known to hold
	Book   PeerTable
	// Hub and Hubs: this node's role is hub; the hubs it dials.
	Hub  bool
	Hubs []string
	// Duplicates lists the suspected duplicates as conflicts (nil: none).
	Duplicates func(st *store.Store) ([]api.Conflict, error)
	// HubAPIOf is where online reads go (nil or "": unknown, a hub).
	HubAPIOf func() string
	// SyncState is the progress of the syncs asked for.
	SyncState func() api.SyncState
	// WorkflowsOf and OpenOf are the metrics' workflow states and open
	// duplicate flags (nil: none).
	WorkflowsOf func() []api.Workflow
	OpenOf      func(st *store.Store) (int, error)
	Log         hclog.Logger
}

// Store, Engine, PeerCounts, Workflows and OpenDuplicates are what a
// metrics scrape reads beyond the status's figures.
func (f Figures) Store() *store.Store         { return f.Node.Store() }
func (f Figures) Engine() *replication.Engine { return f.Eng }
func (f Figures) PeerCounts() map[string]int  { return f.Book.Counts() }

func (f Figures) Workflows() []api.Workflow {
	if f.WorkflowsOf == nil {
		return nil
	}
	return f.WorkflowsOf()
}

func (f Figures) OpenDuplicates() (int, error) {
	if f.OpenOf == nil {
		return 0, nil
	}
	return f.OpenOf(f.Node.Store())
}

func (f Figures) Online() bool     { return f.Eng.Online() }
func (f Figures) SyncAddr() string { return f.SyncLn.Addr().String() }

func (f Figures) GossipAddr() string {
	if f.Gossip == nil {
		return "off"
	}
	return f.Gossip.Addr()
}

func (f Figures) GossipMembers() (int, bool) {
	if f.Gossip == nil {
		return 0, false
	}
	alive := 0
	for _, m := range f.Gossip.Members() {
		if m.State == gossip.StateAlive {
			alive++
		}
	}
	return alive, true
}

// Peers: the peer table's rows.
func (f Figures) Peers() []api.Peer { return f.Book.Rows(f.Eng.Partners(), f.Node.Store(), false) }

func (f Figures) TableSync(table string) time.Time { return f.Book.TableSync(table) }

// PendingOutbound means something on a device always; on a hub only
// when it syncs with other hubs (a lone hub is where writes are held:
// there is nothing to wait for).
func (f Figures) PendingOutbound() (uint64, bool) {
	means := !f.Hub || len(f.Hubs) > 0
	for _, p := range f.Eng.Partners() {
		means = means || p.Role == "hub"
	}
	if !means {
		return 0, false
	}
	return f.Out.Pending(), true
}

// Counts: the open conflicts (Conflicts.List), the sync errors not
// retried (syncErrors: rejected; overridden apart) and the parked writes.
func (f Figures) Counts() (conflicts, syncErrors, overridden, parked int) {
	st := f.Node.Store()
	if cs, err := (Conflicts{Duplicates: f.Duplicates}).List(f.Node); err == nil {
		conflicts = len(cs)
	}
	after := uint64(0)
	for {
		es, err := st.ListSyncErrors(after, 1000)
		if err != nil || len(es) == 0 {
			break
		}
		for _, e := range es {
			switch {
			case e.Retried:
			case node.SyncErrorKind(e.Kind, e.Policy) == node.KindOverridden:
				overridden++
			default:
				syncErrors++
			}
		}
		after = es[len(es)-1].ID
	}
	parked, _ = st.ParkedCount()
	return
}

// Drafts is the number of drafts kept on this node.
func (f Figures) Drafts() int {
	n, err := f.Node.Store().CountDrafts()
	if err != nil && f.Log != nil {
		f.Log.Warn("counting drafts", "error", err)
	}
	return n
}

func (f Figures) HubAPI() string {
	if f.Hub || f.HubAPIOf == nil {
		return ""
	}
	return f.HubAPIOf()
}

func (f Figures) Sync() api.SyncState { return f.SyncState() }
