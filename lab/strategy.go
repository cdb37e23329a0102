package lab

import (
	"fmt"
	"sort"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
)

// ClockMode says how a strategy's replicas stamp writes.
type ClockMode int

const (
	// HLC: hybrid logical clocks, as replicad runs. A received stamp
	// advances the receiver's clock; a stamp further ahead of the
	// receiver's physical clock than the scenario's max_clock_offset is
	// parked until the clock catches up.
	HLC ClockMode = iota
	// Wall: each write is stamped with its device's physical clock (kept
	// strictly increasing per device); received stamps change nothing.
	Wall
)

// Strategy is a way of handling concurrent writes that the lab can
// compare with the others on the same workload. The lab runs the
// replication protocol, the network and the clocks; a strategy decides
// how writes are stamped and what causal context they carry, what the
// arbitrating hub does with each write it receives, and what a reader is
// shown side by side. See docs/lab.md for a worked example.
//
// Every method must be deterministic: a function of its arguments.
type Strategy interface {
	// Name is the strategy's name in scenario files and in results.
	Name() string
	// Clock says how writes are stamped.
	Clock() ClockMode
	// Context returns the causal context a new write by origin to rec
	// carries: the writes it supersedes on the fields it sets. Strategies
	// that track causality return rec.Context(); a plain last-writer-wins
	// register returns only the origin's own previous write (an origin's
	// context must always name its previous write to the record).
	Context(origin hlc.NodeID, rec *crdt.Record) crdt.VV
	// Arbitrated reports whether the strategy needs a hub to decide:
	// without one, its writes stay tentative (counted as such).
	Arbitrated() bool
	// Judge is called at the arbitrating hub (the scenario's first hub)
	// for every remote write it applies, with crdt's outcome. The
	// decision's Fields (or Redelete / Write) become a write the hub makes
	// at once, narrowed by policy.Still to the fields still showing the
	// judged write; its Losses are logged as sync errors, and each loss's
	// Winning entry names the write whose value the decision shows on that
	// field. Rejected marks the judged write as rejected. rejected looks
	// up the decisions not carried out yet (see policy.ArbitrateWith).
	Judge(w *crdt.Write, out *crdt.Outcome, hub hlc.NodeID, rejected policy.Rejected) policy.Decision
	// Conflicts returns the fields (Field "" for the record's existence)
	// that rec shows with several candidates side by side; nil when the
	// strategy shows one value per field.
	Conflicts(rec *crdt.Record) []policy.Conflict
	// PersonResolves reports whether a person resolves the conflicts
	// Conflicts reports: resolve_after (scenario) after the conflict
	// reaches the hub, a person there keeps the highest-stamped candidate
	// with a write that has seen them all.
	PersonResolves() bool
}

// Base is a Strategy's defaults, to embed: HLC stamps, full causal
// contexts, no arbiter, nothing shown side by side (last-writer-wins).
type Base struct{}

// Clock returns HLC.
func (Base) Clock() ClockMode { return HLC }

// Context returns rec.Context().
func (Base) Context(_ hlc.NodeID, rec *crdt.Record) crdt.VV { return rec.Context() }

// Arbitrated returns false.
func (Base) Arbitrated() bool { return false }

// Judge decides nothing.
func (Base) Judge(*crdt.Write, *crdt.Outcome, hlc.NodeID, policy.Rejected) policy.Decision {
	return policy.Decision{}
}

// Conflicts shows nothing side by side.
func (Base) Conflicts(*crdt.Record) []policy.Conflict { return nil }

// PersonResolves returns false.
func (Base) PersonResolves() bool { return false }

// Policy is one of replicad's four table policies, run exactly as the
// daemon's arbitrating hub runs it (policy.ArbitrateWith, policy.Still,
// policy.Conflicts).
type Policy struct{ Kind policy.Kind }

// Name returns the policy's name.
func (p Policy) Name() string { return string(p.Kind) }

// PolicyKind returns the policy: the lab's arbiter keeps the order of
// client-wins judgments for it (policy.Arrivals), as the daemon does.
func (p Policy) PolicyKind() policy.Kind { return p.Kind }

// Clock returns HLC.
func (Policy) Clock() ClockMode { return HLC }

// Context returns rec.Context().
func (Policy) Context(_ hlc.NodeID, rec *crdt.Record) crdt.VV { return rec.Context() }

// Arbitrated reports whether the policy needs a hub.
func (p Policy) Arbitrated() bool { return p.Kind.NeedsArbiter() }

// Judge is policy.ArbitrateWith.
func (p Policy) Judge(w *crdt.Write, out *crdt.Outcome, hub hlc.NodeID, rejected policy.Rejected) policy.Decision {
	return policy.ArbitrateWith(p.Kind, w, out, hub, rejected)
}

// Conflicts is policy.Conflicts.
func (p Policy) Conflicts(rec *crdt.Record) []policy.Conflict { return policy.Conflicts(p.Kind, rec) }

// PersonResolves is true for manual.
func (p Policy) PersonResolves() bool { return p.Kind == policy.Manual }

// MultiValue is the multi-value baseline: every concurrent value is kept
// and shown (as crdt's registers hold them), and nobody is asked to
// choose: the reading application gets all of them.
type MultiValue struct{ Base }

// Name returns "multi-value".
func (MultiValue) Name() string { return "multi-value" }

// Conflicts shows every field with several live candidates.
func (MultiValue) Conflicts(rec *crdt.Record) []policy.Conflict {
	return policy.Conflicts(policy.Manual, rec)
}

// WallClockLWW is the negative control: a plain last-writer-wins register
// per field stamped with the device's own physical clock, no hybrid
// logical clock and no causal context (a write supersedes only its own
// device's earlier writes; among the others the highest wall-clock stamp
// wins, whatever the writer had seen).
type WallClockLWW struct{ Base }

// Name returns "wallclock-lww".
func (WallClockLWW) Name() string { return "wallclock-lww" }

// Clock returns Wall.
func (WallClockLWW) Clock() ClockMode { return Wall }

// Context names only the origin's own previous write to the record.
func (WallClockLWW) Context(origin hlc.NodeID, rec *crdt.Record) crdt.VV {
	if s := rec.Applied.Get(origin); s > 0 {
		return crdt.VV{{Node: origin, Seq: s}}
	}
	return nil
}

var (
	registryMu sync.Mutex
	registry   = map[string]Strategy{}
)

func init() {
	for _, s := range []Strategy{
		Policy{policy.LWW}, Policy{policy.ClientWins}, Policy{policy.ServerWins}, Policy{policy.Manual},
		MultiValue{}, WallClockLWW{},
	} {
		Register(s)
	}
}

// DefaultStrategies are the strategies a scenario compares when it names
// none, in the order results list them.
var DefaultStrategies = []string{"lww", "client-wins", "server-wins", "manual", "multi-value", "wallclock-lww"}

// Register adds a strategy under its name, replacing one of the same
// name; scenarios can then name it.
func Register(s Strategy) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[s.Name()] = s
}

// Lookup returns the registered strategy of that name.
func Lookup(name string) (Strategy, error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	s, ok := registry[name]
	if !ok {
		names := make([]string, 0, len(registry))
		for n := range registry {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown strategy %q (known: %v)", name, names)
	}
	return s, nil
}
