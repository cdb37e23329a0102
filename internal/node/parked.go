package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/store"
)

// Parked writes: remote writes stamped further ahead of this node's clock
// than --max-clock-offset. They are not applied (and not held, so senders
// offer them again: they apply by themselves once the clock catches up);
// an operator can list them and release one, accepting its values (never
// its clock).

// ParkRefusals reports the remote writes refused because their origin
// has as many parked writes as the bound (store.Options.MaxParkedPerOrigin):
// a WARN line (throttled) and, once per origin until its parked writes
// drop below the bound again, a sync error. They are not lost: their
// origin keeps them and offers them again. One ParkRefusals outlives the
// replicas a reset replaces. Set Max and Log; Counted, if set, counts the
// refusals (metrics).
type ParkRefusals struct {
	Max     int
	Log     hclog.Logger
	Counted func(n int)

	log  netguard.Throttle
	mu   sync.Mutex
	full map[hlc.NodeID]bool // origins whose refusal is in the sync errors
}

// Observe reports the refusals of an applied batch (res of writes) on st.
func (p *ParkRefusals) Observe(st *store.Store, writes []*crdt.Write, res *store.Result) {
	if len(res.ParkRefused) == 0 {
		return
	}
	if p.Counted != nil {
		p.Counted(len(res.ParkRefused))
	}
	max := p.Max
	for _, i := range res.ParkRefused {
		w := writes[i]
		if ok, n := p.log.Allow(); ok {
			p.Log.Warn("remote write not parked: its origin has the most parked writes allowed; it stays with its origin, offered again at each session",
				"origin", w.Origin, "seq", w.Seq, "hlc", w.TS.String(), "max_parked", max, "suppressed", n)
		}
		p.mu.Lock()
		if p.full == nil {
			p.full = map[hlc.NodeID]bool{}
		}
		first := !p.full[w.Origin]
		p.full[w.Origin] = true
		p.mu.Unlock()
		if first {
			st.AppendSyncError(&store.SyncError{Time: time.Now().UnixMilli(), Table: w.Table, Record: w.ID, Policy: "clock",
				Nodes: []uint64{uint64(w.Origin)}, Detail: fmt.Sprintf("node %s has %d parked writes (stamped beyond --max-clock-offset), the most --max-parked allows: its further far-ahead writes, from %d (stamped %s) on, are refused until parked ones are released or apply; they stay with it and are offered again", w.Origin, max, w.Seq, w.TS)})
		}
	}
	_, by := st.ParkedCount()
	p.mu.Lock()
	for o := range p.full {
		if by[o] < max {
			delete(p.full, o)
		}
	}
	p.mu.Unlock()
}
