// Package loadgen is replicad's load tool and benchmark driver (`replicad
// bench`). It starts real agents (or targets running ones) and drives them
// over the HTTP API and the sync protocol: API writers and readers,
// simulated devices that write offline and sync with a hub (the real
// replication.Session over loopback TCP), devices going offline and
// online, a new device's initial sync. Every figure it measures comes
// with a baseline measured in the same run on the same disk or loopback:
// raw Pebble synced Sets, raw Pebble batched writes, raw loopback TCP.
//
// Results are JSON (Doc); package loadgen/report turns them, with `go test
// -bench` output, into the Markdown and JSON report of `make bench`.
package loadgen
