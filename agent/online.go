package agent

import (
	"context"

	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/workflows"
)

// startOnline starts the work that only runs online (issue 9) on a hub:
// it brings the duplicate-detection key index in line with the
// configuration (before any session or API request), publishes the
// flags duplicate detection queues (internal/ext/dedupe), and runs the workflows
// (internal/ext/workflows). Called from replica.start.
func (r *running) startOnline(ctx context.Context) {
	if err := dedupe.Rebuild(r.host("dedupe"), r.dupes); err != nil {
		r.a.log.Error("duplicate detection: building the key index", "error", err)
	}
	if d := r.dupes; d != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); d.Run(ctx) }()
	}
	if r.a.cfg.Role != "hub" {
		if len(r.a.cfg.Workflows) > 0 {
			r.a.log.Warn("workflows are run by a hub only; ignoring them", "workflows", len(r.a.cfg.Workflows))
		}
		return
	}
	var dec workflows.Decisions
	if r.arb != nil {
		dec = r.arb
	}
	flows, err := workflows.New(r.host("workflows"), r.a.feed, dec, r.a.cfg.Workflows)
	if err != nil {
		r.a.log.Error("workflows: not started", "error", err)
		return
	}
	r.flows = flows
	flows.Start(ctx, &r.wg)
}
