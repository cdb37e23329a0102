package metrics

import "github.com/prometheus/client_golang/prometheus"

// defenceCollector exports what the sync engine's defences counted
// (replication.Counters); they restart from zero when the replica is
// reopened (a reset).
type defenceCollector struct{ h Host }

var (
	descContradictions = prometheus.NewDesc("replicad_sync_origin_contradictions_total", "Empty claims an origin contradicted (forged or relayed from a forger): dropped, and the origin's writes taken again.", nil, nil)
	descEmptiesRefused = prometheus.NewDesc("replicad_sync_empties_refused_total", "Chunks whose empty claims a full replica ignored (no sender declares anything empty to it: forged, or relayed from a replica that took one).", nil, nil)
	descHandshakesRef  = prometheus.NewDesc("replicad_sync_handshakes_refused_total", "Incoming sync handshakes refused (wrong cluster or version, not authenticated, busy, offline); the reason is logged here only.", nil, nil)
	descSessionsCut    = prometheus.NewDesc("replicad_sync_sessions_cut_total", "Incoming sync sessions ended for holding a slot without progress (too slow or too long).", nil, nil)
)

func (c *defenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descContradictions
	ch <- descEmptiesRefused
	ch <- descHandshakesRef
	ch <- descSessionsCut
}

func (c *defenceCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h == nil {
		return
	}
	c.h.Scrape(func(r Replica) {
		n := r.Engine().Counters()
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{{descContradictions, n.OriginContradictions.Load()}, {descEmptiesRefused, n.EmptiesRefused.Load()}, {descHandshakesRef, n.HandshakesRefused.Load()}, {descSessionsCut, n.SessionsCut.Load()}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
		}
	})
}
