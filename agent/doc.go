// Package agent is the replicad daemon's assembly, built on package
// replica: the lock on the data directory, one *replica.Replica opened
// through the seam internal/replicaopt (the agent's store options,
// listener, TLS identity and engine additions), the extensions
// (internal/ext/*, each an extapi.Extension) kept in one ordered list
// (extensions.go) that each phase of the replica's life loops over, so
// their hooks run in a fixed order, each with its Host (host.go,
// apihost.go), and
// the HTTP API under /v1 on internal/httpapi, whose core routes
// (httpapi.CoreRoutes) and extensions' route hosts reach the current
// replica through one httpapi.Current (apihost.go's slot) or hostOf. Its configuration is package agent/config.
//
// # Layout of the data directory
//
//	<data-dir>/replicad.lock   flock(2)-held while an agent runs
//	<data-dir>/store/          the Pebble store (package store)
//	<data-dir>/reset-<time>/   a store moved aside by a reset
//
// The store lives in a subdirectory because store.Open refuses a
// directory that holds anything but a store, and the lock file must sit
// next to it.
//
// # Subsystems and goroutines
//
// An [Agent] owns a replica (store, clock, engine, gossip, sync listener:
// a *replica.Replica and the extensions on it), which a reset replaces
// with a fresh one, and an HTTP server that outlives
// resets. Goroutines: the HTTP server, the sync listener (engine.Serve),
// the engine's triggers (engine.Run), gossip's own, and a bookkeeping loop
// that tracks what hubs hold of this node's writes. Run returns once all
// of them have stopped and the store is closed.
//
// Only cmd/replicad imports this package.
package agent
