package replication

import (
	"sort"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Collector decides, on a hub, when deleted records may be collected
// everywhere: the tombstone horizon, a version vector that every replica
// which could still send writes is known to hold, along with every write
// any of them made before it held the deletes below the horizon. It works
// in epochs:
//
//  1. At the start of an epoch the target is what every known replica
//     held when last seen (the minimum of their holdings).
//  2. Each known replica is seen again (its first session after the start
//     reports, in its Have, its own writes so far: every write it made
//     before it could have seen the target's deletes).
//  3. Once every known replica holds every other's writes reported in
//     step 2, no write concurrent with a delete below the target can still
//     arrive: the target becomes the horizon, which replicates in every
//     Have, and each replica collects the deleted records whose state it
//     covers (store.Collect). A new epoch starts.
//
// Known replicas are the peers seen within ForgetAfter and this hub. An
// origin in the holdings that is not one of them (a device that only
// syncs with other devices) blocks collection until it syncs with a hub,
// or until its writes have not grown for ForgetAfter. A replica that comes
// back after it was forgotten holds less than the horizon and is refused
// with ErrResyncRequired: it must be reset, so it cannot resurrect deleted
// data. The Collector keeps its state in memory; a restart only delays
// collection.
type Collector struct {
	st          Store
	self        hlc.NodeID
	forgetAfter time.Duration
	now         func() time.Time

	mu     sync.Mutex
	seq    uint64 // observations so far, to order them against epochs
	peers  map[hlc.NodeID]*peerView
	active map[hlc.NodeID]time.Time // origin -> last time its holdings grew
	lastH  map[hlc.NodeID]uint64
	epoch  *epoch
	status string
}

type peerView struct {
	have map[hlc.NodeID]store.Held
	seen time.Time
}

type epoch struct {
	start  uint64 // observation count when it started
	target crdt.VV
	need   map[hlc.NodeID]uint64
}

// NewCollector returns a collector for the hub whose store is st.
// forgetAfter <= 0 means 30 days; now nil means time.Now.
func NewCollector(st Store, forgetAfter time.Duration, now func() time.Time) *Collector {
	if forgetAfter <= 0 {
		forgetAfter = 30 * 24 * time.Hour
	}
	if now == nil {
		now = time.Now
	}
	return &Collector{st: st, self: st.NodeID(), forgetAfter: forgetAfter, now: now,
		peers: map[hlc.NodeID]*peerView{}, active: map[hlc.NodeID]time.Time{}, lastH: map[hlc.NodeID]uint64{}}
}

// Observe records what a peer holds at the start of a session (wire it to
// Local.OnPeerHave).
func (c *Collector) Observe(p Peer, have map[hlc.NodeID]store.Held) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.peers[p.Node] = &peerView{have: have, seen: c.now()}
	if e := c.epoch; e != nil {
		if _, ok := e.need[p.Node]; !ok && c.seq > e.start {
			e.need[p.Node] = have[p.Node].Contig
		}
	}
}

// Status says what the collector is waiting for (for operators).
func (c *Collector) Status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Step advances the epochs; when one completes it raises the horizon and
// collects. It returns the horizon now in force.
func (c *Collector) Step() (crdt.VV, error) {
	c.mu.Lock()
	now := c.now()
	own := c.st.Holdings()
	// Origin activity: when each origin's holdings last grew here.
	for o, h := range own {
		if m := h.Max(); m > c.lastH[o] {
			c.lastH[o] = m
			c.active[o] = now
		}
	}
	known := map[hlc.NodeID]map[hlc.NodeID]store.Held{c.self: own}
	for id, p := range c.peers {
		if now.Sub(p.seen) <= c.forgetAfter {
			known[id] = p.have
		}
	}
	for o := range own {
		if _, ok := known[o]; !ok && now.Sub(c.active[o]) <= c.forgetAfter {
			c.status = "waiting for origin " + o.String() + ", which has not synced with this hub"
			c.mu.Unlock()
			return c.st.GCHorizon()
		}
	}
	minHeld := func() crdt.VV {
		var v crdt.VV
		for o := range own {
			m := own[o].Contig
			for _, have := range known {
				m = min(m, have[o].Contig)
			}
			if m > 0 {
				v = append(v, crdt.Dot{Node: o, Seq: m})
			}
		}
		sort.Slice(v, func(i, j int) bool { return v[i].Node < v[j].Node })
		return v
	}
	e := c.epoch
	if e == nil {
		c.epoch = &epoch{start: c.seq, target: minHeld(), need: map[hlc.NodeID]uint64{c.self: own[c.self].Contig}}
		c.status = "epoch started"
		c.mu.Unlock()
		return c.st.GCHorizon()
	}
	for id := range known {
		if _, ok := e.need[id]; !ok {
			c.status = "waiting for replica " + id.String() + " to sync"
			c.mu.Unlock()
			return c.st.GCHorizon()
		}
	}
	held := minHeld()
	for id, n := range e.need {
		if _, ok := known[id]; ok && held.Get(id) < n {
			c.status = "waiting for every replica to hold " + id.String() + "'s writes"
			c.mu.Unlock()
			return c.st.GCHorizon()
		}
	}
	target := e.target
	c.epoch = &epoch{start: c.seq, target: held, need: map[hlc.NodeID]uint64{c.self: own[c.self].Contig}}
	c.status = "horizon advanced"
	c.mu.Unlock()
	if len(target) == 0 {
		return c.st.GCHorizon()
	}
	h, err := c.st.RaiseGCHorizon(target)
	if err != nil {
		return nil, err
	}
	for {
		n, err := c.st.Collect(1000)
		if err != nil {
			return h, err
		}
		if n < 1000 {
			return h, nil
		}
	}
}
