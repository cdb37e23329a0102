package dedupe

import (
	"context"
	"sync"

	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/replication"
)

// Ext is duplicate detection as one of the agent's extensions. Its hooks
// are registered on every node (a nil Detector, off the arbitrating hub,
// tracks nothing); at Start the key index is brought in line with the
// configuration (dropped where no detector runs) and the detector runs.
type Ext struct {
	*Detector // nil: not the arbitrating hub, or no table has key fields
	h         Host
}

// NewExt returns duplicate detection on h, with a detector of keys (each
// table's key fields) if on.
func NewExt(h Host, on bool, keys map[string][]string) *Ext {
	e := &Ext{h: h}
	if on {
		e.Detector = New(h, keys)
	}
	return e
}

// Name is "dedupe".
func (e *Ext) Name() string { return "dedupe" }

// Build registers the duplicate tracking of local writes and applied
// batches.
func (e *Ext) Build(p extapi.Parts, _ *replication.Config) error {
	p.Node.OnLocalWrite("dedupe", e.TrackLocal)
	p.Node.OnApply("dedupe", e.TrackApplied)
	return nil
}

// Start rebuilds the key index (before any session or API request) and
// runs the detector, which publishes the flags it queues.
func (e *Ext) Start(ctx context.Context, wg *sync.WaitGroup) {
	if err := Rebuild(e.h, e.Detector); err != nil {
		e.h.Log().Error("duplicate detection: building the key index", "error", err)
	}
	if d := e.Detector; d != nil {
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(ctx) }()
	}
}
