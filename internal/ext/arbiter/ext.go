package arbiter

import (
	"context"
	"sync"

	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/replication"
)

// The arbiter as one of the agent's extensions (the arbitrating hub's).

// Name is "arbiter".
func (a *Arbiter) Name() string { return "arbiter" }

// Build tells devices in the handshake how far their writes are decided
// and registers the arbiter's decisions on every applied batch (queued in
// the batch).
func (a *Arbiter) Build(p extapi.Parts, ecfg *replication.Config) error {
	ecfg.Local.Decided = a.DecidedUpTo
	p.Node.OnApply("arbiter", a.Hook)
	return nil
}

// Start carries out the decisions queued by applied batches (and any
// left by a crash) as they come, until ctx is done.
func (a *Arbiter) Start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
}
