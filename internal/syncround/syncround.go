package syncround

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// A sync asked for (POST /v1/sync, replicad sync) returns the outcome of
// this device's changes, not only their delivery: client-wins and
// server-wins writes are decided by the arbitrating hub after it applies
// them, and the decision is a write of the hub's that comes back at a
// later session. So, after the round, the sync waits until the arbiter
// has decided every write this device made before the call to a table
// of those policies, and the decisions are here, whichever session
// carried the write to the hub (this one, a push, a watch-triggered
// pull). It knows from the hub's Welcome (replication
// PartnerStatus.Decided: every write of this device up to it is held
// and decided there, the decisions brought back by that session), and
// asks with short sessions with the arbiter until the mark passes its
// writes or the wait ends (DefaultDecisionWait, ?wait=). With no
// arbitrating hub known, it returns at once saying the changes stay
// tentative. The summary lists the sync errors this device received
// since a sync last listed them (a rejected or overridden change), so
// they show at sync time whichever session brought them.

// DefaultDecisionWait bounds how long a sync waits for the arbiter's
// decisions on this device's writes.
const DefaultDecisionWait = 10 * time.Second

// MaxDecisionWait bounds the wait a sync may ask for.
const MaxDecisionWait = 5 * time.Minute

// maxListedUndecided bounds the undecided writes a summary lists.
const maxListedUndecided = 20

// Engine is what a sync round needs of the replication engine.
type Engine interface {
	Partners() []replication.PartnerStatus
	Online() bool
	SyncWith(ctx context.Context, addr string) (replication.Stats, error)
}

// Syncer runs the syncs asked for of one replica.
type Syncer struct {
	n   *node.Node
	out *node.Outbound
	hub bool
	log hclog.Logger
	// shown is the newest sync error a sync asked for has returned.
	shown atomic.Uint64
}

// New returns the syncer of node n (a hub when hub), whose estimate of
// own writes no hub holds yet is out; the sync errors logged before count
// as shown.
func New(n *node.Node, out *node.Outbound, hub bool, log hclog.Logger) *Syncer {
	s := &Syncer{n: n, out: out, hub: hub, log: log}
	s.shown.Store(lastSyncErrorID(n.Store()))
	return s
}

// Run is a sync asked for, by engine eng: round (a round with every partner), then the
// wait for the arbiter's decisions on this node's earlier writes (a hub
// waits for none), with the sync errors received since the previous
// sync asked for returned them (or since the syncer was made), be it by
// this round or by a push or pull in between.
func (s *Syncer) Run(ctx context.Context, eng Engine, wait time.Duration, round func(ctx context.Context) api.Summary) api.Summary {
	upTo := s.ownLast()
	sum := round(ctx)
	if !s.hub {
		d := s.awaitDecisions(ctx, eng, upTo, wait)
		sum.Decisions = &d
		sum.Millis += d.WaitedMs
	}
	shown := s.shown.Load()
	sum.SyncErrors = s.syncErrorsSince(shown)
	if n := len(sum.SyncErrors); n > 0 {
		s.shown.CompareAndSwap(shown, sum.SyncErrors[n-1].ID)
	}
	s.out.Observe(eng.Partners()) // the pending count is current at return
	return sum
}

// arbiterState returns the sync addresses of the arbitrating hubs this
// node syncs with, the highest Decided mark among them, and the last
// error of each if none of them is reachable ("" otherwise).
func (s *Syncer) arbiterState(eng Engine) (arbiters []string, mark uint64, unreachable string) {
	reachable := false
	for _, p := range eng.Partners() {
		if p.Role != "hub" || !p.Arbiter {
			continue
		}
		arbiters = append(arbiters, p.Addr)
		mark = max(mark, p.Decided)
		if p.LastError == "" {
			reachable = true
		} else {
			unreachable += p.Addr + ": " + p.LastError + "; "
		}
	}
	if reachable {
		unreachable = ""
	}
	return arbiters, mark, unreachable
}

// arbitratedTables reports whether some table is client-wins or
// server-wins now by the policies this replica holds (true when they
// cannot be read). Now is the clock's high-water mark when it is ahead
// of the physical clock: a policy stamped in the current millisecond, or
// received from a hub whose clock runs ahead, is in force.
func (s *Syncer) arbitratedTables() bool {
	now := max(s.n.Clock().HighWater(), hlc.New(s.n.Clock().Physical(), 0))
	after := ""
	for {
		ents, next, err := s.n.Store().Scan(node.PolicyTable, after, 1000)
		if err != nil {
			return true
		}
		for _, e := range ents {
			if k := s.n.PolicyAt(e.ID, now); k == policy.ClientWins || k == policy.ServerWins {
				return true
			}
		}
		if next == "" || len(ents) == 0 {
			return false
		}
		after = next
	}
}

// undecided returns this node's writes with sequence numbers in
// (after, upTo] to tables that need the arbiter (client-wins,
// server-wins by the policy in force when each was made): at most
// maxListedUndecided of them, and their count.
func (s *Syncer) undecided(after, upTo uint64) ([]api.Undecided, int, error) {
	var out []api.Undecided
	n := 0
	if upTo <= after {
		return nil, 0, nil
	}
	errStop := errors.New("stop")
	err := s.n.Store().Stream(s.n.ID(), after, func(w *crdt.Write) error {
		if w.Seq > upTo {
			return errStop
		}
		if k := s.n.PolicyAt(w.Table, w.TS); k != policy.ClientWins && k != policy.ServerWins {
			return nil
		}
		n++
		if len(out) < maxListedUndecided {
			out = append(out, api.Undecided{Table: w.Table, ID: w.ID, Seq: w.Seq})
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, n, err
}

// awaitDecisions waits up to wait until the arbiter has decided this
// node's writes up to upTo and the decisions are here (see the comment
// at the top).
func (s *Syncer) awaitDecisions(ctx context.Context, eng Engine, upTo uint64, wait time.Duration) api.Decisions {
	start := time.Now()
	deadline := start.Add(wait)
	pause := 20 * time.Millisecond
	for {
		arbiters, mark, unreachable := s.arbiterState(eng)
		if len(arbiters) == 0 && !s.arbitratedTables() {
			return api.Decisions{State: "none", WaitedMs: time.Since(start).Milliseconds()}
		}
		if len(arbiters) == 0 {
			return api.Decisions{State: "tentative", WaitedMs: time.Since(start).Milliseconds(),
				Detail: "no arbitrating hub is known: changes to client-wins and server-wins tables stay tentative until one decides them"}
		}
		list, n, err := s.undecided(mark, upTo)
		d := api.Decisions{State: "undecided", WaitedMs: time.Since(start).Milliseconds(), Count: n, Undecided: list}
		switch {
		case err != nil:
			d.Detail = "reading this device's writes: " + err.Error()
			return d
		case n == 0:
			d.State = "decided"
			return d
		case !eng.Online():
			d.Detail = "offline: the arbiter's decisions arrive at the next sync"
			return d
		case unreachable != "":
			d.Detail = "the arbitrating hub is unreachable: " + unreachable[:len(unreachable)-2]
			return d
		case !time.Now().Before(deadline) || ctx.Err() != nil:
			d.Detail = fmt.Sprintf("not decided by the arbitrating hub, or its decisions not received, within %v", wait)
			return d
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		pause = min(2*pause, 500*time.Millisecond)
		for _, addr := range arbiters {
			if _, err := eng.SyncWith(ctx, addr); err != nil {
				s.log.Debug("asking the arbiter for its decisions", "hub", addr, "error", err)
			}
		}
	}
}

// syncErrorsSince returns the sync errors logged here with ids above
// after (at most 100).
func (s *Syncer) syncErrorsSince(after uint64) []api.SyncError {
	out := []api.SyncError{}
	es, err := s.n.Store().ListSyncErrors(after, 100)
	if err != nil {
		return out
	}
	for _, e := range es {
		out = append(out, node.SyncErrorView(e))
	}
	return out
}

// lastSyncErrorID returns the id of the newest sync error logged in st.
func lastSyncErrorID(st *store.Store) uint64 {
	var last uint64
	for {
		es, err := st.ListSyncErrors(last, 1000)
		if err != nil || len(es) == 0 {
			return last
		}
		last = es[len(es)-1].ID
	}
}

// ownLast returns the sequence number of this node's latest write.
func (s *Syncer) ownLast() uint64 {
	h := s.n.Store().HeldOf(s.n.ID())
	if n := len(h.Ranges); n > 0 {
		return h.Ranges[n-1].Hi
	}
	return h.Contig
}
