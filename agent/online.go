package agent

import (
	"context"

	"github.com/replicad/replicad/internal/ext/dedupe"
)

// startOnline starts the work that only runs online (issue 9) on a hub:
// it brings the duplicate-detection key index in line with the
// configuration (before any session or API request), publishes the
// flags duplicate detection queues (internal/ext/dedupe), and runs the workflows
// (workflows.go). Called from replica.start.
func (r *replica) startOnline(ctx context.Context) {
	if err := dedupe.Rebuild(r.host("dedupe"), r.dupes); err != nil {
		r.a.log.Error("duplicate detection: building the key index", "error", err)
	}
	if d := r.dupes; d != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); d.Run(ctx) }()
	}
	flows, err := newWorkflows(r)
	if err != nil {
		r.a.log.Error("workflows: not started", "error", err)
		flows = &workflows{r: r}
	}
	r.flows = flows
	flows.start(ctx)
}
