package workflows

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
)

// Ext is the workflows as one of the agent's extensions: a hub runs them
// from Start (before any session); any other node warns that it ignores
// those configured.
type Ext struct {
	*Set // the hub's running workflows (nil until Start, or none)

	h    Host
	feed Feed
	dec  Decisions
	cfgs []config.WorkflowConfig
	hub  bool
	log  hclog.Logger
}

// NewExt returns the workflows cfgs on h, woken by feed, asking dec (nil:
// none, not the arbitrating hub) whether a change is decided; hub: this
// node is a hub.
func NewExt(h Host, feed Feed, dec Decisions, cfgs []config.WorkflowConfig, hub bool, log hclog.Logger) *Ext {
	return &Ext{h: h, feed: feed, dec: dec, cfgs: cfgs, hub: hub, log: log}
}

// Name is "workflows".
func (e *Ext) Name() string { return "workflows" }

// Start runs a hub's workflows until ctx is done.
func (e *Ext) Start(ctx context.Context, wg *sync.WaitGroup) {
	if !e.hub {
		if len(e.cfgs) > 0 {
			e.log.Warn("workflows are run by a hub only; ignoring them", "workflows", len(e.cfgs))
		}
		return
	}
	ws, err := New(e.h, e.feed, e.dec, e.cfgs)
	if err != nil {
		e.log.Error("workflows: not started", "error", err)
		return
	}
	e.Set = ws
	ws.Start(ctx, wg)
}
