// Package metrics is the extension of the agent's Prometheus metrics, on
// a registry of its own (GET /metrics): the counters the agent's paths
// bump (writes, sessions, API requests by route pattern, refusals), and
// the gauges a scrape reads of the current replica through its Host
// (conflicts, sync errors, parked and pending writes, the store's sizes,
// peers, workflows, open duplicates, the sync engine's defences).
package metrics
