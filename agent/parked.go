package agent

import (
	"fmt"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// Parked writes: remote writes stamped further ahead of this node's clock
// than --max-clock-offset. They are not applied (and not held, so senders
// offer them again: they apply by themselves once the clock catches up);
// an operator can list them and release one, accepting its values (never
// its clock).

// parkRefused reports the remote writes refused because their origin has
// as many parked writes as --max-parked: a WARN line (throttled) and, once
// per origin until its parked writes drop below the bound again, a sync
// error. They are not lost: their origin keeps them and offers them again.
func (r *running) parkRefused(writes []*crdt.Write, res *store.Result) {
	if len(res.ParkRefused) == 0 {
		return
	}
	r.a.metrics.ParkRefused(len(res.ParkRefused))
	max := r.a.cfg.Security.Guard.WithDefaults().MaxParked
	for _, i := range res.ParkRefused {
		w := writes[i]
		if ok, n := r.a.parkLog.Allow(); ok {
			r.a.log.Warn("remote write not parked: its origin has the most parked writes allowed; it stays with its origin, offered again at each session",
				"origin", w.Origin, "seq", w.Seq, "hlc", w.TS.String(), "max_parked", max, "suppressed", n)
		}
		r.a.parkMu.Lock()
		first := !r.a.parkFull[w.Origin]
		r.a.parkFull[w.Origin] = true
		r.a.parkMu.Unlock()
		if first {
			r.store.AppendSyncError(&store.SyncError{Time: time.Now().UnixMilli(), Table: w.Table, Record: w.ID, Policy: "clock",
				Nodes: []uint64{uint64(w.Origin)}, Detail: fmt.Sprintf("node %s has %d parked writes (stamped beyond --max-clock-offset), the most --max-parked allows: its further far-ahead writes, from %d (stamped %s) on, are refused until parked ones are released or apply; they stay with it and are offered again", w.Origin, max, w.Seq, w.TS)})
		}
	}
	_, by := r.store.ParkedCount()
	r.a.parkMu.Lock()
	for o := range r.a.parkFull {
		if by[o] < max {
			delete(r.a.parkFull, o)
		}
	}
	r.a.parkMu.Unlock()
}
