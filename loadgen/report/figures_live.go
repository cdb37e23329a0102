package report

// liveFigures: live queries in-process (package query/live on a store on
// disk), each against the durable write it reports, measured in the same
// run.
func liveFigures() []Figure {
	const (
		local  = "BenchmarkLiveLocalWrite/index=owner"
		scan   = "BenchmarkLiveLocalWrite/index=none"
		remote = "BenchmarkLiveRemoteWrite"
		fan    = "BenchmarkLive1000Subscribers"
		push   = "BenchmarkLiveSyncSession/path=push"
		watch  = "BenchmarkLiveSyncSession/path=watch"
	)
	return []Figure{
		{ID: "live-local-p99", Title: "live query: a durable local write to its change event at a subscriber (100 other subscribers, 11 queries, an index on owner): p99 latency", Value: ref(local, "p99-ms"), Unit: "ms",
			Baseline: pref(local, "write-p99-ms"), BaselineName: "the durable write alone, p99",
			Target: "≤ 20 ms", Check: atMost(ref(local, "p99-ms"), 20, "ms")},
		{ID: "live-local-scan-p99", Title: "the same without an index (each view run scans the 1,000 records): p99 latency", Value: ref(scan, "p99-ms"), Unit: "ms",
			Baseline: pref(local, "p99-ms"), BaselineName: "the same with an index on owner, p99",
			Why: "a view runs its whole query again when a change can alter its result: without an index that is a table scan"},
		{ID: "live-remote-p99", Title: "live query: a remote write's arrival (ApplyRemote, durable) to its add event at a subscriber: p99 latency", Value: ref(remote, "p99-ms"), Unit: "ms",
			Baseline: pref(remote, "write-p99-ms"), BaselineName: "the durable ApplyRemote alone, p99",
			Target: "≤ 50 ms", Check: atMost(ref(remote, "p99-ms"), 50, "ms")},
		{ID: "live-session-push-p99", Title: "live query through a sync session (two replicas on loopback TCP): a device's write pushed to its hub, from the hub reading the chunk off the connection to the add event at the hub's subscriber: p99 latency", Value: ref(push, "p99-ms"), Unit: "ms",
			Baseline: pref(push, "base-p99-ms"), BaselineName: "ApplyRemote to event on the same store, same run, p99",
			Target: "≤ 50 ms", Check: atMost(ref(push, "p99-ms"), 50, "ms")},
		{ID: "live-session-watch-p99", Title: "the same, a hub's write pulled by a watching device: from the device reading the chunk off the connection to the add event at its subscriber: p99 latency", Value: ref(watch, "p99-ms"), Unit: "ms",
			Baseline: pref(watch, "base-p99-ms"), BaselineName: "ApplyRemote to event on the same store, same run, p99",
			Target: "≤ 50 ms", Check: atMost(ref(watch, "p99-ms"), 50, "ms")},
		{ID: "live-session-watch-e2e-p99", Title: "the same watch path from the durable write on the hub to the event at the device's subscriber (news, session, apply): p99 latency", Value: ref(watch, "e2e-p99-ms"), Unit: "ms",
			Baseline: pref(watch, "p99-ms"), BaselineName: "from the chunk's arrival (live-session-watch-p99)"},
		{ID: "live-1000-lost", Title: "live query: 1,000 subscribers (100 queries) while writes go on: events queued and not received", Value: ref(fan, "lost"), Unit: "events",
			Target: "0", Check: atMost(ref(fan, "lost"), 0, "events")},
		{ID: "live-1000-p99", Title: "the same 1,000 subscribers: write to event p99 latency over every delivery", Value: ref(fan, "p99-ms"), Unit: "ms",
			Baseline: pref(local, "p99-ms"), BaselineName: "one subscriber's local write to event p99 (live-local-p99)"},
	}
}
