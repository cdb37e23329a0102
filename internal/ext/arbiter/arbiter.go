package arbiter

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// Queue is the store's work queue of the arbiter's decisions.
const Queue store.QueueName = 'a'

// Host is what the arbiter needs of the node it runs on.
type Host interface {
	extapi.Node
	extapi.Decider
}

// Arbiter makes a hub's policy decisions (package policy) durable: they
// are computed inside the batch that applies the remote writes and queued
// in it (store.Batch.EnqueueIn, Queue), then carried out as local writes whose batch
// also dequeues them and records the sync errors. A crash between the two
// steps loses nothing: the queue is drained again at start.
type Arbiter struct {
	h    Host
	kick chan struct{}
	mu   sync.Mutex // one drain at a time

	// rejected holds the server-wins rejections queued but not carried
	// out yet, so that judging a later write of the same record restores
	// past them (policy.ArbitrateWith). Rebuilt from the queue at start.
	rmu      sync.Mutex
	rejected map[crdt.Dot]policy.Decision
	// arrivals orders the client-wins judgments by queue id, so that a
	// decision carried out late never overrides a write that reached the
	// hub after the one it judged (guarded by rmu; rebuilt at start).
	arrivals policy.Arrivals
	// queued counts the decisions queued and not carried out yet, per
	// judged write (guarded by rmu; rebuilt at start): decidedUpTo.
	queued map[crdt.Dot]int
}

// New returns the arbiter of hub h; it judges each write by the policy in
// force when the write was made (node.PolicyInBatch). Its queue is read back:
// decisions a crash left queued are carried out by the next Drain.
func New(h Host) *Arbiter {
	a := &Arbiter{h: h, kick: make(chan struct{}, 1), rejected: map[crdt.Dot]policy.Decision{}, queued: map[crdt.Dot]int{}}
	if qs, err := h.Store().QueueOf(Queue, -1); err == nil {
		for _, q := range qs {
			var d Decision
			if json.Unmarshal(q.Value, &d) != nil {
				continue
			}
			if d.Rejected {
				a.rejected[d.judged()] = d.decision()
			}
			a.queued[d.judged()]++
			a.arrivals.Judged(policy.Kind(d.Policy), &crdt.Write{Table: d.Table, ID: d.ID, Origin: hlc.NodeID(d.Origin), Seq: d.Seq}, q.ID, d.decision())
		}
	}
	return a
}

// judged is the write the decision is about.
func (d *Decision) judged() crdt.Dot { return crdt.Dot{Node: hlc.NodeID(d.Origin), Seq: d.Seq} }

// decision is the policy.Decision a queued decision carries out.
func (d *Decision) decision() policy.Decision {
	return policy.Decision{Fields: d.Fields, Redelete: d.Redelete, Write: d.Write, Rejected: d.Rejected, Losses: d.Losses}
}

// Decision is a decision as queued: what to write and what to log.
type Decision struct {
	Table, ID string
	Origin    uint64 // the judged write
	Seq       uint64
	Policy    string
	Fields    []crdt.FieldValue
	Redelete  bool
	Write     bool
	Rejected  bool
	Losses    []policy.Loss
	// Time is when the hub judged the write (Unix ms): the time of its
	// sync errors (0 in entries queued by an older version: the time they
	// are carried out).
	Time int64 `json:",omitempty"`
}

// Hook runs inside the batch that applies remote writes (an apply hook of
// the node): it judges each applied write and queues the decision.
func (a *Arbiter) Hook(b *store.Batch, writes []*crdt.Write, res *store.Result) error {
	n := 0
	for i, w := range writes {
		if res.Status[i] != store.Applied {
			continue
		}
		k, err := node.PolicyInBatch(b, w.Table, w.TS) // a hook: read through b
		if err != nil {
			return err
		}
		d := policy.ArbitrateWith(k, w, &res.Outcomes[i], a.h.ID(), func(dot crdt.Dot) (policy.Decision, bool) {
			a.rmu.Lock()
			defer a.rmu.Unlock()
			rd, ok := a.rejected[dot]
			return rd, ok
		})
		a.rmu.Lock()
		a.arrivals.Dedupe(k, w, &d)
		a.rmu.Unlock()
		if d.Empty() && len(d.Losses) == 0 {
			continue
		}
		data, err := json.Marshal(Decision{Table: w.Table, ID: w.ID, Origin: uint64(w.Origin), Seq: w.Seq, Policy: string(k),
			Fields: d.Fields, Redelete: d.Redelete, Write: d.Write, Rejected: d.Rejected, Losses: d.Losses, Time: time.Now().UnixMilli()})
		if err != nil {
			return err
		}
		id := b.EnqueueIn(Queue, data)
		a.rmu.Lock()
		if d.Rejected {
			a.rejected[w.Dot()] = d
		}
		a.arrivals.Judged(k, w, id, d)
		a.queued[w.Dot()]++
		a.rmu.Unlock()
		n++
	}
	if n > 0 {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// syncErrors turns a decision's losses into sync-error entries.
func (d *Decision) syncErrors() []*store.SyncError {
	var out []*store.SyncError
	at := d.Time
	if at == 0 {
		at = time.Now().UnixMilli()
	}
	for _, l := range d.Losses {
		e := &store.SyncError{Time: at, Table: d.Table, Record: d.ID, Policy: d.Policy,
			Losing: map[string][]byte{}, Winning: map[string][]byte{}}
		if l.Field != "" {
			e.Fields = []string{l.Field}
			e.Losing[l.Field] = l.Losing.Value
			e.Winning[l.Field] = l.Winning.Value
		}
		nodes := map[uint64]bool{uint64(l.Losing.Origin): true}
		if l.Winning.Origin != 0 {
			nodes[uint64(l.Winning.Origin)] = true
		}
		for n := range nodes {
			e.Nodes = append(e.Nodes, n)
		}
		sort.Slice(e.Nodes, func(i, j int) bool { return e.Nodes[i] < e.Nodes[j] })
		e.Kind = node.KindOverridden
		switch {
		case d.Rejected:
			e.Kind = node.KindRejected
			e.Detail = fmt.Sprintf("%s: the change %v:%d was made without seeing a change the hub had accepted; it was undone", d.Policy, l.Losing.Origin, l.Losing.Seq)
		default:
			e.Detail = fmt.Sprintf("%s: the value of %v:%d was overridden by %v:%d", d.Policy, l.Losing.Origin, l.Losing.Seq, l.Winning.Origin, l.Winning.Seq)
		}
		out = append(out, e)
	}
	return out
}

// Drain carries out the queued decisions.
func (a *Arbiter) Drain() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.h.Store()
	for {
		qs, err := st.QueueOf(Queue, 100)
		if err != nil || len(qs) == 0 {
			return err
		}
		for _, q := range qs {
			var d Decision
			if err := json.Unmarshal(q.Value, &d); err != nil {
				a.h.Log().Error("dropping an undecodable policy decision", "id", q.ID, "error", err)
				if err := st.Update(func(b *store.Batch) error { b.DequeueFrom(Queue, q.ID); return b.Err() }); err != nil {
					return err
				}
				continue
			}
			judged := d.judged()
			// The losses name the writes that made the values: a value the
			// hub re-wrote for a client-wins decision is the judged
			// write's, so its maker learns of the loss.
			for i := range d.Losses {
				for _, e := range []*crdt.Entry{&d.Losses[i].Losing, &d.Losses[i].Winning} {
					if e.Origin != a.h.ID() {
						continue
					}
					orig, ok, err := st.Restamp(e.Dot())
					if err != nil {
						return err
					}
					if ok {
						e.Origin, e.Seq = orig.Node, orig.Seq
					}
				}
			}
			errs := d.syncErrors()
			// The errors also travel to the device that made the change
			// (and every replica) as records of errorTable; written first,
			// with ids derived from the judged write, so that a crash and a
			// second attempt write the same records again.
			for i, e := range errs {
				if err := a.h.PublishSyncError(fmt.Sprintf("%v-%d-%d", hlc.NodeID(d.Origin), d.Seq, i), e); err != nil {
					return err
				}
			}
			fill := func(b *store.Batch) error {
				b.DequeueFrom(Queue, q.ID)
				for _, e := range errs {
					b.AppendSyncError(e)
				}
				return b.Err()
			}
			// Narrowed, under the store's write mutex, to what still
			// applies: a later write that had seen the judged one stands,
			// and a write that reached the hub after it is left to its own
			// decision.
			res, err := a.h.WriteDecided(d.Table, d.ID, func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
				a.rmu.Lock()
				nd := policy.Still(d.decision(), judged, rec, a.arrivals.Overtaken(d.Table, d.ID, q.ID))
				a.rmu.Unlock()
				return nd.Fields, nd.Redelete, !nd.Empty()
			}, func(b *store.Batch, r *store.WriteResult) error {
				if d.Policy == string(policy.ClientWins) && len(r.Write.Fields) > 0 {
					b.PutRestamp(r.Write.Dot(), judged)
				}
				return fill(b)
			})
			if err != nil {
				return fmt.Errorf("policy decision on %s/%s: %w", d.Table, d.ID, err)
			}
			if res == nil {
				// Nothing left to write: only the bookkeeping.
				if err := st.Update(fill); err != nil {
					return err
				}
			}
			a.rmu.Lock()
			delete(a.rejected, judged)
			a.arrivals.Done(q.ID)
			if a.queued[judged]--; a.queued[judged] <= 0 {
				delete(a.queued, judged)
			}
			a.rmu.Unlock()
		}
	}
}

// Pending reports whether a decision about the write origin/seq is
// queued and not carried out yet (workflows wait for it).
func (a *Arbiter) Pending(origin hlc.NodeID, seq uint64) bool {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	return a.queued[crdt.Dot{Node: origin, Seq: seq}] > 0
}

// DecidedUpTo returns the highest sequence number n such that this hub
// holds every write of origin up to n and has carried out its decision on
// each (most have none to carry out): a device that syncs afterwards
// holds the outcome of its writes up to n. Told to the device in the
// sync handshake (replication.Local.Decided).
func (a *Arbiter) DecidedUpTo(origin hlc.NodeID) uint64 {
	// Holdings first: a write is queued (in the batch's hook) before its
	// batch makes it held, so whatever is held here is queued by now.
	n := a.h.Store().HeldOf(origin).Contig
	a.rmu.Lock()
	defer a.rmu.Unlock()
	for d := range a.queued {
		if d.Node == origin && d.Seq <= n {
			n = d.Seq - 1
		}
	}
	return n
}

// Run carries out the decisions queued by applied batches (and any left
// by a crash) as they come, until ctx is done.
func (a *Arbiter) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := a.Drain(); err != nil {
			a.h.Log().Error("policy decisions", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
	}
}
