package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
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

// maxListedUndecided bounds the undecided writes a summary lists.
const maxListedUndecided = 20

// arbiterState returns the sync addresses of the arbitrating hubs this
// node syncs with, the highest Decided mark among them, and the last
// error of each if none of them is reachable ("" otherwise).
func (rp *replica) arbiterState() (arbiters []string, mark uint64, unreachable string) {
	reachable := false
	for _, p := range rp.engine.Partners() {
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
// cannot be read).
func (rp *replica) arbitratedTables() bool {
	now := hlc.New(rp.clock.Physical(), 0)
	after := ""
	for {
		ents, next, err := rp.store.Scan(policyTable, after, 1000)
		if err != nil {
			return true
		}
		for _, e := range ents {
			if k := rp.n.PolicyAt(e.ID, now); k == policy.ClientWins || k == policy.ServerWins {
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
func (rp *replica) undecided(after, upTo uint64) ([]api.Undecided, int, error) {
	var out []api.Undecided
	n := 0
	if upTo <= after {
		return nil, 0, nil
	}
	errStop := errors.New("stop")
	err := rp.store.Stream(rp.node, after, func(w *crdt.Write) error {
		if w.Seq > upTo {
			return errStop
		}
		if k := rp.n.PolicyAt(w.Table, w.TS); k != policy.ClientWins && k != policy.ServerWins {
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
func (rp *replica) awaitDecisions(ctx context.Context, upTo uint64, wait time.Duration) api.Decisions {
	start := time.Now()
	deadline := start.Add(wait)
	pause := 20 * time.Millisecond
	for {
		arbiters, mark, unreachable := rp.arbiterState()
		if len(arbiters) == 0 && !rp.arbitratedTables() {
			return api.Decisions{State: "none", WaitedMs: time.Since(start).Milliseconds()}
		}
		if len(arbiters) == 0 {
			return api.Decisions{State: "tentative", WaitedMs: time.Since(start).Milliseconds(),
				Detail: "no arbitrating hub is known: changes to client-wins and server-wins tables stay tentative until one decides them"}
		}
		list, n, err := rp.undecided(mark, upTo)
		d := api.Decisions{State: "undecided", WaitedMs: time.Since(start).Milliseconds(), Count: n, Undecided: list}
		switch {
		case err != nil:
			d.Detail = "reading this device's writes: " + err.Error()
			return d
		case n == 0:
			d.State = "decided"
			return d
		case !rp.engine.Online():
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
			if _, err := rp.engine.SyncWith(ctx, addr); err != nil {
				rp.a.log.Debug("asking the arbiter for its decisions", "hub", addr, "error", err)
			}
		}
	}
}

// syncErrorsSince returns the sync errors logged here with ids above
// after (at most 100).
func (rp *replica) syncErrorsSince(after uint64) []api.SyncError {
	out := []api.SyncError{}
	es, err := rp.store.ListSyncErrors(after, 100)
	if err != nil {
		return out
	}
	for _, e := range es {
		out = append(out, node.SyncErrorView(e))
	}
	return out
}

// lastSyncErrorID returns the id of the newest sync error logged here.
func (rp *replica) lastSyncErrorID() uint64 {
	var last uint64
	for {
		es, err := rp.store.ListSyncErrors(last, 1000)
		if err != nil || len(es) == 0 {
			return last
		}
		last = es[len(es)-1].ID
	}
}

// ownLast returns the sequence number of this node's latest write.
func (rp *replica) ownLast() uint64 {
	h := rp.store.HeldOf(rp.node)
	if n := len(h.Ranges); n > 0 {
		return h.Ranges[n-1].Hi
	}
	return h.Contig
}

// maxDecisionWait bounds ?wait= of POST /v1/sync.
const maxDecisionWait = 5 * time.Minute

// decisionWait parses POST /v1/sync's ?wait=DURATION (default
// DefaultDecisionWait; 0: do not wait).
func decisionWait(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return DefaultDecisionWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxDecisionWait {
		return 0, httpapi.Errorf(http.StatusBadRequest, "wait=%q: want a duration from 0s to %v, such as 10s", s, maxDecisionWait)
	}
	return d, nil
}

// syncRound is a sync asked for: a round with every partner, then the
// wait for the arbiter's decisions on this node's earlier writes (a hub
// waits for none), with the sync errors received since the previous
// sync asked for returned them (or since the replica was opened), be it
// by this round or by a push or pull in between.
func (a *Agent) syncRound(ctx context.Context, rp *replica, wait time.Duration) api.Summary {
	upTo := rp.ownLast()
	sum := a.runSync(ctx, rp)
	if a.cfg.Role != "hub" {
		d := rp.awaitDecisions(ctx, upTo, wait)
		sum.Decisions = &d
		sum.Millis += d.WaitedMs
	}
	shown := rp.errsShown.Load()
	sum.SyncErrors = rp.syncErrorsSince(shown)
	if n := len(sum.SyncErrors); n > 0 {
		rp.errsShown.CompareAndSwap(shown, sum.SyncErrors[n-1].ID)
	}
	rp.out.Observe(rp.engine.Partners()) // the pending count is current at return
	return sum
}
