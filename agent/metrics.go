package agent

import "github.com/replicad/replicad/internal/ext/metrics"

// metricsHost is the metrics' Host: a scrape reads the current replica's
// figures (httpapi.Figures).
type metricsHost struct{ a *Agent }

func (h metricsHost) Scrape(fn func(metrics.Replica)) {
	h.a.cur.Peek(func(rp *running) { fn(rp.figures()) })
}
