// Package replicaopt is the seam between package replica (one replica
// in-process, public) and the daemon's assembly (package agent), which is
// built on it: what only the agent gives replica.Open (store options, a
// pre-bound and wrapped sync listener, a clock offset, checks and
// migrations of the store opened, additions to the replication engine's
// and gossip's configuration, hook registration before the engine exists,
// start and stop callbacks for the extensions' goroutines), and what the
// agent reaches of the replica's core for its extensions (Parts: store,
// clock, node, engine, gossip, sync listener).
//
// The options ride on the context given to replica.Open (NewContext), so
// that the public Config has no field exposing internals: an embedder
// outside this module cannot name this package. Open fills Options.Parts.
package replicaopt

import (
	"context"
	"net"
	"time"

	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// Options is what the agent adds to a replica.Config. Every field is
// optional; the callbacks are called in the order of their fields.
type Options struct {
	// Store replaces the store options Open derives from the Config
	// (Dir is still Config.DataDir): the at-rest key, the memtable and
	// WAL options, the node id of a new store, the parked-write bound.
	Store *store.Options
	// SyncListener is the sync listener, bound (and wrapped: connection
	// bounds, TLS) by the caller; Config.SyncAddr and Config.TLS are then
	// not used to listen. Open takes it: Close closes it, and so does a
	// failed Open.
	SyncListener net.Listener
	// TLS is the node's TLS identity (internal/credentials): sessions are
	// dialed with its client configuration and every peer's claimed node
	// id and role checked against its certificate, the path Config.TLS
	// takes too (replica/tls.go). The listener is SyncListener, wrapped.
	TLS *secure.TLS
	// ClockOffset skews the physical clock (testing only).
	ClockOffset time.Duration
	// Opened is called with the store just opened, before anything is
	// built on it (the node's identity checked, queues migrated); an
	// error fails Open.
	Opened func(st *store.Store) error
	// Configure completes the engine's configuration before gossip is
	// joined (p has the store, clock and node; no engine, no gossip yet).
	Configure func(p *Parts, ecfg *replication.Config) error
	// Gossip completes gossip's configuration (the keyring, profile,
	// advertised API address) before it is joined.
	Gossip func(g *gossip.Config)
	// Build is called after gossip is joined (p.Gossip set) and before
	// the engine is built: the hooks are registered here, in their
	// order, and the engine's configuration finished.
	Build func(p *Parts, ecfg *replication.Config) error
	// Manual: Open does not start the replica (serve the sync listener,
	// run the engine); Parts.Start does.
	Manual bool
	// Start is called when the replica starts, before its sync listener
	// is served and its engine runs; ctx is done when Close begins.
	// Extension goroutines run with Parts.Go.
	Start func(ctx context.Context, p *Parts)
	// Stop is called by Close (and by an Open that fails once the store
	// is open) when the engine, gossip and every goroutine started with
	// Parts.Go have stopped, before the store closes: the extensions'
	// goroutines are waited for and what must be written back is written.
	Stop func(p *Parts)

	// Parts is set by Open (before Opened is called) and filled as the
	// replica is built.
	Parts *Parts
}

// Parts are the replica's core, as its extensions reach it. Set by
// Open; read them, do not replace them.
type Parts struct {
	Store  *store.Store
	Clock  *hlc.Clock
	Node   *node.Node
	Engine *replication.Engine // nil until the engine is built
	Gossip *gossip.Gossip      // nil without gossip
	SyncLn net.Listener        // nil: the replica only dials

	// Set by package replica.
	StartFunc func() error
	GoFunc    func(fn func(ctx context.Context))
}

// Start starts a replica opened with Manual: the Start callback, the
// sync listener served, the engine's triggers; a hub publishes its table
// policies first. Later calls do nothing.
func (p *Parts) Start() error { return p.StartFunc() }

// Go runs fn in a goroutine Close waits for (before the Stop callback);
// fn returns when its context is done.
func (p *Parts) Go(fn func(ctx context.Context)) { p.GoFunc(fn) }

type ctxKey struct{}

// NewContext returns ctx carrying o for replica.Open.
func NewContext(ctx context.Context, o *Options) context.Context {
	return context.WithValue(ctx, ctxKey{}, o)
}

// FromContext returns the options ctx carries, nil if none.
func FromContext(ctx context.Context) *Options {
	o, _ := ctx.Value(ctxKey{}).(*Options)
	return o
}
