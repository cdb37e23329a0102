// Package lab is replicad's research lab: a deterministic discrete-event
// simulation that compares conflict-handling strategies on the same
// workload, with the project's real merge (crdt), policy decisions
// (policy.ArbitrateWith, policy.Still, policy.Arrivals, policy.Conflicts)
// and sync protocol (the replication.Session state machine and its wire
// encoding) running for hubs, devices and peers.
//
// What is simulated: time (an event queue in milliseconds; no wall clock
// is read), the network (per-message latency, jitter, bandwidth, loss
// that cuts a session, partitions, offline periods), physical clocks
// (per-device skew under hybrid logical clocks, including the parking of
// stamps beyond the clock bound), and storage: each replica keeps its
// records as crdt.Record values in memory behind the replication.Store
// interface, with the store's contract for duplicates, parked and
// deferred writes, but without Pebble or fsyncs (docs/lab.md explains
// the choice).
//
// Same scenario, seed and strategy give byte-identical results: each run
// is single-threaded, its random numbers come from seeded generators
// (one for the workload, the same under every strategy, and one for the
// network), and every map is iterated in sorted order where order
// matters. Runs may execute in parallel; they share nothing mutable.
//
// Scenarios are HCL files (lab/scenarios, documented in docs/lab.md);
// strategies implement [Strategy]; results are [RunResult] values,
// rendered by [Render] as CSV, JSON, a summary across seeds, gonum plots
// and a Markdown report. `replicad lab run SCENARIO` is [Main].
package lab
