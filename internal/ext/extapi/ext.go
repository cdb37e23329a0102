package extapi

import (
	"context"
	"sync"

	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// Extension is one extension as the agent assembles it. The agent builds
// its extensions for each replica it opens (a reset or a store recovery
// builds them again) and keeps them in one ordered list; at each phase of
// the replica's life it calls, in the list's order, the extensions that
// take part in it: Configurer, Builder, Starter, Stopper. An extension's
// place in the list is thus its place in each hook kind's order.
type Extension interface {
	// Name names the extension (its hooks, its logger).
	Name() string
}

// Parts are the replica's parts an extension is configured and built
// with: the node (its write pipeline, where hooks are registered) and
// gossip (nil before Build, or when gossip is off).
type Parts struct {
	Node   *node.Node
	Gossip *gossip.Gossip
}

// Configurer sets what the engine needs of the extension (admission,
// scopes, the handshake's fields) before gossip is joined.
type Configurer interface {
	Extension
	Configure(p Parts, ecfg *replication.Config) error
}

// Builder registers the extension's hooks on the node once gossip is
// joined, before the engine exists.
type Builder interface {
	Extension
	Build(p Parts, ecfg *replication.Config) error
}

// Starter starts what the extension does before any session; its
// goroutines run on wg and return once ctx is done (the replica closing).
type Starter interface {
	Extension
	Start(ctx context.Context, wg *sync.WaitGroup)
}

// Stopper runs once the extensions' goroutines have returned, before the
// store closes.
type Stopper interface {
	Extension
	Stop()
}
