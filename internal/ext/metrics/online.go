package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// onlineCollector exports the state of the work that only runs online at
// scrape time: each workflow's backlog, outcomes and retry state, and the
// open duplicate flags.
type onlineCollector struct{ h Host }

var (
	descWfBacklog   = prometheus.NewDesc("replicad_workflow_backlog", "Feed entries after the workflow's cursor (not handled yet; changes of other tables included).", []string{"workflow"}, nil)
	descWfDelivered = prometheus.NewDesc("replicad_workflow_delivered_total", "Changes a workflow delivered (confirmed).", []string{"workflow"}, nil)
	descWfFailed    = prometheus.NewDesc("replicad_workflow_failed_total", "Changes a workflow gave up on (max_attempts).", []string{"workflow"}, nil)
	descWfAttempts  = prometheus.NewDesc("replicad_workflow_attempts_total", "Delivery attempts of a workflow, failed ones included.", []string{"workflow"}, nil)
	descWfRetrying  = prometheus.NewDesc("replicad_workflow_retrying", "1 while a workflow retries a failing change.", []string{"workflow"}, nil)
	descDupsOpen    = prometheus.NewDesc("replicad_duplicates_open", "Suspected duplicate records not resolved yet.", nil, nil)
)

func (c *onlineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWfBacklog, descWfDelivered, descWfFailed, descWfAttempts, descWfRetrying, descDupsOpen} {
		ch <- d
	}
}

func (c *onlineCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h == nil {
		return
	}
	c.h.Scrape(func(r Replica) {
		for _, v := range r.Workflows() {
			cur, _ := strconv.ParseUint(v.Cursor, 10, 64)
			head, _ := strconv.ParseUint(v.FeedHead, 10, 64)
			backlog := 0.0
			if head > cur {
				backlog = float64(head - cur)
			}
			retrying := 0.0
			if v.State == "retrying" {
				retrying = 1
			}
			ch <- prometheus.MustNewConstMetric(descWfBacklog, prometheus.GaugeValue, backlog, v.Name)
			ch <- prometheus.MustNewConstMetric(descWfDelivered, prometheus.CounterValue, float64(v.Delivered), v.Name)
			ch <- prometheus.MustNewConstMetric(descWfFailed, prometheus.CounterValue, float64(v.Failed), v.Name)
			ch <- prometheus.MustNewConstMetric(descWfAttempts, prometheus.CounterValue, float64(v.Attempts), v.Name)
			ch <- prometheus.MustNewConstMetric(descWfRetrying, prometheus.GaugeValue, retrying, v.Name)
		}
		if n, err := r.OpenDuplicates(); err == nil {
			ch <- prometheus.MustNewConstMetric(descDupsOpen, prometheus.GaugeValue, float64(n))
		}
	})
}
