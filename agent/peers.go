package agent

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// msWhen is msTime, "" for 0 (never).
func msWhen(ms int64) string {
	if ms == 0 {
		return ""
	}
	return msTime(ms)
}

// peerRows returns the peer table: every remembered peer per direction,
// with the engine's view of dialed partners (those never reached too).
// full adds each row's pending writes and sync errors.
func (r *replica) peerRows(full bool) []api.Peer {
	partners := r.engine.Partners()
	var total uint64
	var errs map[hlc.NodeID]int
	if full {
		for _, h := range r.store.Holdings() {
			total += peers.HeldCount(h)
		}
		errs = r.syncErrorsByNode()
	}
	var rows []api.Peer
	used := map[string]bool{}
	r.book.Each(func(n hlc.NodeID, rec *peers.Record) {
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
					Failures: s.Failures, SkewMs: s.SkewMs, Last: statsView(s.Last)},
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
			LastError: p.LastError, Failures: p.Failures, NextTry: timeStr(p.NextTry), SkewMs: p.SkewMs, Last: statsView(p.Last),
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
func (r *replica) syncErrorsByNode() map[hlc.NodeID]int {
	out := map[hlc.NodeID]int{}
	after, seen := uint64(0), 0
	for seen < maxSyncErrorScan {
		es, err := r.store.ListSyncErrors(after, 1000)
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

// onSession is told of every session's end (replication.Config.OnSession).
func (r *replica) onSession(in replication.SessionInfo) {
	r.book.Ended(in)
	r.book.LogSession(in)
	r.a.metrics.Session(in)
}

// flushPeers writes the peer table to the store every peers.FlushEvery
// until done (close writes the rest).
func (r *replica) flushPeers(done <-chan struct{}) {
	t := time.NewTicker(peers.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := r.book.Flush(); err != nil && !errors.Is(err, store.ErrClosed) {
				r.a.log.Warn("writing the peer table", "error", err)
			}
		}
	}
}

func (a *Agent) route(r *http.Request) string {
	if a.routeOf == nil {
		return ""
	}
	return a.routeOf(r)
}

// listPeers serves GET /v1/peers: the peer table with each peer's pending
// writes and sync errors.
func (a *Agent) listPeers(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		return map[string]any{"peers": rp.peerRows(true)}, nil
	})
}

// pendingOutboundMeans reports whether "pending outbound" (own writes no
// hub is known to hold) means something here: on a device always; on a
// hub only when it syncs with other hubs (a lone hub is where writes are
// held: there is nothing to wait for).
func (r *replica) pendingOutboundMeans() bool {
	if r.a.cfg.Role != "hub" || len(r.a.cfg.Hubs) > 0 {
		return true
	}
	for _, p := range r.engine.Partners() {
		if p.Role == "hub" {
			return true
		}
	}
	return false
}
