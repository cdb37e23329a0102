package report

// httpQueryFigures: queries and live queries through the agent's HTTP
// API handlers (internal/httpapi on a loopback server), each beside the
// same query embedded and raw Pebble, measured in the same run.
func httpQueryFigures() []Figure {
	const (
		q   = "BenchmarkQueryHTTP"
		sse = "BenchmarkWatchSSE1000"
	)
	return []Figure{
		{ID: "query-http-p99", Title: "query by equality on an indexed field returning 50 records (the store of query-indexed), through GET /v1/tables/{t}/records on loopback with a keep-alive client: p99 latency", Value: ref(q+"/http", "p99-µs"), Unit: "µs",
			Baseline: pref(q+"/embedded", "p99-µs"), BaselineName: "the same query embedded (replica.Query), p99"},
		{ID: "query-http-p50", Title: "the same query through HTTP: p50 latency", Value: ref(q+"/http", "p50-µs"), Unit: "µs",
			Baseline: pref(q+"/embedded", "p50-µs"), BaselineName: "the same query embedded, p50"},
		{ID: "query-http-raw-p50", Title: "the same 50 records read with raw Pebble (iterating over their keys and decoding them): p50 latency", Value: ref(q+"/raw-pebble", "p50-µs"), Unit: "µs",
			Why: "the floor under both: what reading the records costs without a query or an API"},
		{ID: "watch-sse-1000-lost", Title: "live query over HTTP: 1,000 event streams (watch=true, text/event-stream), a write entering the result each time: add events not received", Value: ref(sse, "events-lost"), Unit: "events",
			Target: "0", Check: atMost(ref(sse, "events-lost"), 0, "events")},
		{ID: "watch-sse-1000-p99", Title: "the same 1,000 streams: a write to its add event at every stream, p99", Value: ref(sse, "p99-µs"), Unit: "µs",
			Why: "what serving the events as HTTP streams adds to the live engine's fan-out (live-1000-p99 is the in-process figure)"},
	}
}
