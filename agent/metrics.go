package agent

import "github.com/replicad/replicad/internal/ext/metrics"

// metricsHost is the metrics' Host: a scrape reads the current replica's
// figures (httpapi.Figures).
type metricsHost struct{ a *Agent }

func (h metricsHost) Scrape(fn func(metrics.Replica)) {
	h.a.mu.RLock()
	defer h.a.mu.RUnlock()
	if h.a.rep != nil {
		fn(h.a.rep.figures())
	}
}
