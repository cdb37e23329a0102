package replication

import (
	"flag"
	"fmt"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// arbiter makes the sim's hub arbitrate per table, as the daemon will:
// decisions from each applied chunk, then the hub's compensating writes
// and sync-error entries after the session.
type arbiter struct {
	hub      *simNode
	policies map[string]policy.Kind
	pending  []pendingDecision
	// losses are every loss the hub logged, with the dots of both writes,
	// so that a test can match a lost value exactly.
	losses []loggedLoss
	// name, if set, names nodes in sync-error details (default: the id).
	name func(hlc.NodeID) string
	// judged maps each decision write the hub made to the write it judged.
	judged map[crdt.Dot]crdt.Dot
	// arrivals numbers the client-wins judgments in arrival order.
	arrivals policy.Arrivals
	n        uint64
}

type pendingDecision struct {
	n    uint64 // arrival number
	w    *crdt.Write
	kind policy.Kind // the table's policy when the hub applied w
	d    policy.Decision
}

// loggedLoss is one loss as the hub logged it.
type loggedLoss struct {
	Table, ID string
	Policy    policy.Kind
	Judged    crdt.Dot // the write whose arrival the hub judged
	Rejected  bool
	policy.Loss
}

func newArbiter(s *sim, hub *simNode, policies map[string]policy.Kind) *arbiter {
	a := &arbiter{hub: hub, policies: policies, judged: map[crdt.Dot]crdt.Dot{}}
	hub.local.OnApplied = func(_ hlc.NodeID, ws []*crdt.Write, res *store.Result) {
		for i, w := range ws {
			if res.Status[i] != store.Applied {
				continue
			}
			k := a.policies[w.Table]
			d := policy.ArbitrateWith(k, w, &res.Outcomes[i], hub.local.Node, func(dot crdt.Dot) (policy.Decision, bool) {
				for _, p := range a.pending {
					if p.w.Dot() == dot && p.d.Rejected {
						return p.d, true
					}
				}
				return policy.Decision{}, false
			})
			if *flagPolicyTrace {
				fmt.Printf("APPLY %s/%s %v del=%v fields=%v ctx=%v\n   out=%+v\n   dec=%+v\n", w.Table, w.ID, w.Dot(), w.Delete, w.Fields, w.Ctx, res.Outcomes[i], d)
			}
			if !d.Empty() || len(d.Losses) > 0 {
				a.n++
				a.arrivals.Dedupe(k, w, &d)
				a.arrivals.Judged(k, w, a.n, d)
				a.pending = append(a.pending, pendingDecision{a.n, w, k, d})
			}
		}
	}
	return a
}

// -sync.policytrace prints every judgment and decision the sim's hub makes.
var flagPolicyTrace = flag.Bool("sync.policytrace", false, "print the sim hub's judgments and decisions")

func (a *arbiter) nodeName(id hlc.NodeID) string {
	if a.name != nil {
		return a.name(id)
	}
	return id.String()
}

// entry names a candidate for a sync-error detail.
func (a *arbiter) entry(e crdt.Entry) string {
	switch {
	case e.Origin == 0:
		return "(absent)"
	case e.Delete:
		return fmt.Sprintf("(deleted)@%s:%d", a.nodeName(e.Origin), e.Seq)
	case e.Value == nil:
		return fmt.Sprintf("write@%s:%d", a.nodeName(e.Origin), e.Seq)
	}
	return fmt.Sprintf("%s@%s:%d", e.Value, a.nodeName(e.Origin), e.Seq)
}

// author is e named by the write that made its value: a value the hub
// re-wrote for a client-wins decision is the judged write's.
func (a *arbiter) author(t testing.TB, e crdt.Entry) crdt.Entry {
	if e.Origin != a.hub.local.Node {
		return e
	}
	orig, ok, err := a.hub.st.Restamp(e.Dot())
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		e.Origin, e.Seq = orig.Node, orig.Seq
	}
	return e
}

// settle makes the hub's decisions.
func (a *arbiter) settle(t testing.TB) {
	t.Helper()
	for _, p := range a.pending {
		res, err := a.hub.st.WriteDecided(a.hub.clock, p.w.Table, p.w.ID, func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool) {
			p.d = policy.Still(p.d, p.w.Dot(), rec, a.arrivals.Overtaken(p.w.Table, p.w.ID, p.n))
			return p.d.Fields, p.d.Redelete, !p.d.Empty()
		}, func(b *store.Batch, r *store.WriteResult) error {
			if p.kind == policy.ClientWins && len(r.Write.Fields) > 0 {
				b.PutRestamp(r.Write.Dot(), p.w.Dot())
			}
			return b.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		a.arrivals.Done(p.n)
		if res != nil {
			w := res.Write
			a.hub.acked = append(a.hub.acked, w)
			a.judged[w.Dot()] = p.w.Dot()
			if *flagPolicyTrace {
				fmt.Printf("DECIDE %s/%s judged %v -> %v fields=%v redel=%v\n", p.w.Table, p.w.ID, p.w.Dot(), w.Dot(), w.Fields, w.Delete)
			}
		}
		for _, l := range p.d.Losses {
			l.Losing, l.Winning = a.author(t, l.Losing), a.author(t, l.Winning)
			verb := "overridden by"
			if p.d.Rejected {
				verb = "rejected, kept"
			}
			e := &store.SyncError{Table: p.w.Table, Record: p.w.ID, Policy: string(p.kind),
				Losing: map[string][]byte{}, Winning: map[string][]byte{},
				Detail: fmt.Sprintf("%s %s %s", a.entry(l.Losing), verb, a.entry(l.Winning))}
			if l.Field != "" {
				e.Fields = []string{l.Field}
				e.Losing[l.Field] = l.Losing.Value
				e.Winning[l.Field] = l.Winning.Value
			}
			if _, err := a.hub.st.AppendSyncError(e); err != nil {
				t.Fatal(err)
			}
			a.losses = append(a.losses, loggedLoss{Table: p.w.Table, ID: p.w.ID, Policy: p.kind, Judged: p.w.Dot(), Rejected: p.d.Rejected, Loss: l})
		}
	}
	a.pending = nil
}

func (a *arbiter) sync(t *testing.T, s *sim, dev *simNode) {
	t.Helper()
	s.mustSync(dev, a.hub)
	a.settle(t)
}

func get(t *testing.T, n *simNode, table, id, field string) string {
	t.Helper()
	rec, err := n.st.Get(table, id)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	v, ok := rec.Get(field)
	if !ok {
		return "<none>"
	}
	return v.String()
}

// TestPoliciesWorkOrder is the seed's example under each policy: a
// technician offline changes a work order's Start Time, a dispatcher at
// the office (the hub) changes its End Time; then both change Start Time.
func TestPoliciesWorkOrder(t *testing.T) {
	for _, tc := range []struct {
		kind                 policy.Kind
		wantStart, wantEnd   string // after the different-fields edits
		wantSame             string // start after both edit it (tech syncs last)
		wantErrors, conflict bool
	}{
		{policy.LWW, `"09:00"`, `"12:00"`, `"07:30"`, true, false},
		{policy.ClientWins, `"09:00"`, `"12:00"`, `"10:00"`, true, false},
		{policy.ServerWins, `"08:00"`, `"12:00"`, `"07:30"`, true, false},
		{policy.Manual, `"09:00"`, `"12:00"`, `"07:30"`, false, true},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			s := newSim(t)
			hub := s.add("hub", "hub", FullScope())
			tech := s.add("tech", "device", FullScope())
			a := newArbiter(s, hub, map[string]policy.Kind{"wo": tc.kind})
			s.write(hub, "wo", "1", map[string]any{"start": "08:00", "end": "10:00"}, false)
			a.sync(t, s, tech)
			// Offline: the technician moves Start, the dispatcher moves End.
			tech.phys += 100
			s.write(tech, "wo", "1", map[string]any{"start": "09:00"}, false)
			hub.phys += 200
			s.write(hub, "wo", "1", map[string]any{"end": "12:00"}, false)
			a.sync(t, s, tech)
			a.sync(t, s, tech)
			for _, n := range []*simNode{hub, tech} {
				if got := get(t, n, "wo", "1", "start"); got != tc.wantStart {
					t.Errorf("%s: start = %s, want %s", n.name, got, tc.wantStart)
				}
				if got := get(t, n, "wo", "1", "end"); got != tc.wantEnd {
					t.Errorf("%s: end = %s, want %s", n.name, got, tc.wantEnd)
				}
			}
			// Both change Start Time; the dispatcher's stamp is later, the
			// technician's change reaches the hub last.
			tech.phys += 1000
			s.write(tech, "wo", "1", map[string]any{"start": "10:00"}, false)
			hub.phys += 5000
			s.write(hub, "wo", "1", map[string]any{"start": "07:30"}, false)
			a.sync(t, s, tech)
			a.sync(t, s, tech)
			for _, n := range []*simNode{hub, tech} {
				if got := get(t, n, "wo", "1", "start"); got != tc.wantSame {
					t.Errorf("%s: start after the same-field edits = %s, want %s", n.name, got, tc.wantSame)
				}
			}
			rec, _ := hub.st.Get("wo", "1")
			if got := len(policy.Conflicts(tc.kind, rec)) > 0; got != tc.conflict {
				t.Errorf("conflict shown: %v, want %v (%v)", got, tc.conflict, rec.Candidates("start"))
			}
			errs, err := hub.st.ListSyncErrors(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if (len(errs) > 0) != tc.wantErrors {
				t.Errorf("%d sync errors, want some: %v", len(errs), tc.wantErrors)
			}
			if !converged(t, []*simNode{hub, tech}) {
				t.Error("replicas differ")
			}
		})
	}
}
