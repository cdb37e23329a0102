package node

import (
	"context"
	"sync"
	"time"

	"github.com/replicad/replicad/replication"
)

// Outbound estimates how many of this node's writes no hub holds yet.
//
// The engine does not export what a partner holds, so this is an
// approximation from session times: a session with a hub that succeeded
// delivered every local write made before it started (the session sends
// everything the hub lacks as of its start). After a restart every write
// made before the restart counts as pending until the first successful
// session with a hub. Gossip pushes are not counted as delivery.
type Outbound struct {
	mu        sync.Mutex
	marks     []mark // local writes not known delivered, in order
	delivered uint64 // highest own seq known delivered
	last      uint64 // highest own seq
	hubs      bool   // a hub partner was seen
}

type mark struct {
	t   time.Time
	seq uint64
}

// NewOutbound returns the estimate of a node whose highest own sequence
// number is last (all of them counted pending).
func NewOutbound(last uint64) *Outbound {
	o := &Outbound{last: last}
	if last > 0 {
		o.marks = []mark{{time.Now(), last}}
	}
	return o
}

// maxMarks bounds Outbound.marks: a node that syncs with no hub (a hub
// itself, or a device away for long) otherwise kept one mark per local
// write forever (found by the hub-memory benchmark's heap profiles).
const maxMarks = 4096

// Wrote counts the local write seq (an observer of the write pipeline).
func (o *Outbound) Wrote(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.marks = append(o.marks, mark{time.Now(), seq})
	if seq > o.last {
		o.last = seq
	}
	if len(o.marks) > maxMarks {
		// Keep the later mark of each pair: a write then counts as made
		// at its pair's later time, so it is taken as delivered one
		// session later at worst, never earlier.
		n := 0
		for i := 1; i < len(o.marks); i += 2 {
			o.marks[n] = o.marks[i]
			n++
		}
		if len(o.marks)%2 == 1 {
			o.marks[n] = o.marks[len(o.marks)-1]
			n++
		}
		o.marks = o.marks[:n]
	}
}

// Observe takes the partners' session times as delivery (hubs only).
func (o *Outbound) Observe(ps []replication.PartnerStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if p.Role != "hub" {
			continue
		}
		o.hubs = true
		if p.LastError != "" || p.LastSuccess.IsZero() || p.LastAttempt.After(p.LastSuccess) {
			continue
		}
		i := 0
		for i < len(o.marks) && o.marks[i].t.Before(p.LastAttempt) {
			if o.marks[i].seq > o.delivered {
				o.delivered = o.marks[i].seq
			}
			i++
		}
		o.marks = o.marks[i:]
	}
}

// Pending returns the number of own writes not known to be held by a hub.
func (o *Outbound) Pending() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last <= o.delivered {
		return 0
	}
	return o.last - o.delivered
}

// ObserveEvery tracks what the partners hold (Observe) every interval
// until ctx is done.
func (o *Outbound) ObserveEvery(ctx context.Context, every time.Duration, partners func() []replication.PartnerStatus) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.Observe(partners())
		}
	}
}
