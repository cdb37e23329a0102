package agent

import (
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/metrics"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// metricsHost is the metrics' Host: a scrape reads the current replica.
type metricsHost struct{ a *Agent }

func (h metricsHost) Scrape(fn func(metrics.Replica)) {
	h.a.mu.RLock()
	defer h.a.mu.RUnlock()
	if h.a.rep != nil {
		fn(metricsReplica{h.a.rep.figures(), h.a.rep})
	}
}

// metricsReplica is what a scrape reads of a replica: its figures
// (Counts, PendingOutbound) and the rest below.
type metricsReplica struct {
	httpapi.Figures
	rp *running
}

func (m metricsReplica) Store() *store.Store { return m.rp.store }

func (m metricsReplica) Engine() *replication.Engine { return m.rp.engine }

func (m metricsReplica) PeerCounts() map[string]int { return m.rp.book.Counts() }

func (m metricsReplica) Workflows() []api.Workflow {
	var out []api.Workflow
	for _, w := range m.rp.flows.All() {
		out = append(out, w.View())
	}
	return out
}

func (m metricsReplica) OpenDuplicates() (int, error) {
	ds, err := dedupe.List(m.rp.store, false)
	return len(ds), err
}
