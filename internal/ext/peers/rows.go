package peers

import (
	"net/http"
	"sort"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// msWhen is ms as an RFC 3339 time, "" for 0 (never).
func msWhen(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// Rows returns the peer table as the API shows it (GET /v1/peers, the
// status): every remembered peer per direction, with the engine's view of
// dialed partners (those never reached too). full adds each row's
// pending writes (from st's holdings) and sync errors.
func (b *Book) Rows(partners []replication.PartnerStatus, st *store.Store, full bool) []api.Peer {
	var total uint64
	var errs map[hlc.NodeID]int
	if full {
		for _, h := range st.Holdings() {
			total += heldCount(h)
		}
		errs = syncErrorsByNode(st)
	}
	var rows []api.Peer
	used := map[string]bool{}
	b.Each(func(n hlc.NodeID, rec *Record) {
		for _, dir := range []string{"dialed", "served"} {
			s := rec.Served
			if dir == "dialed" {
				s = rec.Dialed
			}
			if s == nil {
				continue
			}
			row := api.Peer{
				Partner: api.Partner{Addr: s.Addr, Node: n.String(), Role: rec.Role, LastSuccess: msWhen(s.LastSuccess), LastError: s.LastError,
					Failures: s.Failures, SkewMs: s.SkewMs, Last: node.StatsView(s.Last)},
				Direction: dir, Version: rec.Version, FirstSeen: msWhen(s.FirstSeen), LastSessionAt: msWhen(s.LastSession),
				Result: s.Result, Sessions: s.Sessions, WritesIn: s.WritesIn, WritesOut: s.WritesOut, DurationMs: s.DurationMs,
			}
			if dir == "dialed" {
				for _, p := range partners {
					if p.Node == n || p.Node == 0 && p.Addr == s.Addr {
						row.LastAttempt, row.NextTry = timeStr(p.LastAttempt), timeStr(p.NextTry)
						row.Addr = p.Addr
						row.APIAddr, row.GossipAddr = p.APIAddr, p.GossipAddr
						used[p.Addr] = true
					}
				}
			}
			if full {
				if rec.KnownSet {
					p := total - min(total, rec.Known)
					row.Pending = &p
				}
				e := errs[n]
				row.SyncErrors = &e
			}
			rows = append(rows, row)
		}
	})
	for _, p := range partners {
		if used[p.Addr] {
			continue
		}
		// A partner not reached yet, or reached only before a reset of
		// this node's replica.
		row := api.Peer{Partner: api.Partner{Addr: p.Addr, Role: p.Role, LastSuccess: timeStr(p.LastSuccess), LastAttempt: timeStr(p.LastAttempt),
			LastError: p.LastError, Failures: p.Failures, NextTry: timeStr(p.NextTry), SkewMs: p.SkewMs, Last: node.StatsView(p.Last),
			APIAddr: p.APIAddr, GossipAddr: p.GossipAddr}, Direction: "dialed"}
		if p.Node != 0 {
			row.Node = p.Node.String()
		}
		if p.LastError != "" {
			row.Result = "failed"
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Direction != rows[j].Direction {
			return rows[i].Direction < rows[j].Direction
		}
		if rows[i].Node != rows[j].Node {
			return rows[i].Node < rows[j].Node
		}
		return rows[i].Addr < rows[j].Addr
	})
	if rows == nil {
		rows = []api.Peer{}
	}
	return rows
}

// maxSyncErrorScan bounds the sync-error entries GET /v1/peers reads to
// count them per node.
const maxSyncErrorScan = 100000

// syncErrorsByNode counts the sync-error log's entries not retried per
// node they name.
func syncErrorsByNode(st *store.Store) map[hlc.NodeID]int {
	out := map[hlc.NodeID]int{}
	after, seen := uint64(0), 0
	for seen < maxSyncErrorScan {
		es, err := st.ListSyncErrors(after, 1000)
		if err != nil || len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.Retried {
				continue
			}
			for i, n := range e.Nodes {
				if !contains64(e.Nodes[:i], n) {
					out[hlc.NodeID(n)]++
				}
			}
		}
		seen += len(es)
		after = es[len(es)-1].ID
	}
	return out
}

func contains64(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Replica is what GET /v1/peers reads of the current replica: its peer
// table, its engine's partners and its store.
type Replica struct {
	Book     *Book
	Partners func() []replication.PartnerStatus
	Store    *store.Store
}

// Routes adds GET /v1/peers: the peer table with each peer's pending
// writes and sync errors.
func Routes(rt extapi.Registrar, h extapi.Current[Replica]) {
	rt.Handle("GET /v1/peers", func(http.ResponseWriter, *http.Request) (any, error) {
		return h.With(func(r Replica) (any, error) {
			return map[string]any{"peers": r.Book.Rows(r.Partners(), r.Store, true)}, nil
		})
	})
}
