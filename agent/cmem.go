package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/replicad/replicad/internal/cmem"
)

// Pebble's block cache and memtables live in C malloc's memory (cgo),
// which the Go runtime neither sees nor scavenges: the agent hands the
// free pages of malloc's arenas back every cmemTrimEvery and makes no
// more arenas once it opens its store (internal/cmem), so resident memory
// follows what the caches hold rather than what malloc kept since the
// start.
const (
	cmemArenas    = 2
	cmemTrimEvery = 30 * time.Second
)

// limitCmem caps malloc's arenas at cmemArenas, or at those already made
// if more; New calls it before opening the store.
func limitCmem() { cmem.LimitArenas(cmemArenas) }

// startCmem trims malloc's arenas until ctx is done; the returned channel
// closes when the trimming has stopped.
func startCmem(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); cmem.Run(ctx, cmemTrimEvery) }()
	return done
}

// cmemCollector reports C malloc's figures at scrape time (none without
// glibc's malloc).
type cmemCollector struct{}

var (
	descMallocInUse = prometheus.NewDesc("replicad_c_malloc_inuse_bytes", "C malloc's memory allocated in its arenas (Pebble's block cache, with cgo).", nil, nil)
	descMallocFree  = prometheus.NewDesc("replicad_c_malloc_free_bytes", "C malloc's free memory held in its arenas (resident unless trimmed).", nil, nil)
	descMallocMmap  = prometheus.NewDesc("replicad_c_malloc_mmap_bytes", "C malloc's large allocations mapped one each (Pebble's memtables, with cgo).", nil, nil)
)

func (cmemCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMallocInUse
	ch <- descMallocFree
	ch <- descMallocMmap
}

func (cmemCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := cmem.ReadStats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descMallocInUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(descMallocFree, prometheus.GaugeValue, float64(s.Free))
	ch <- prometheus.MustNewConstMetric(descMallocMmap, prometheus.GaugeValue, float64(s.Mapped))
}
