package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/replicad/replicad/internal/cmem"
)

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
