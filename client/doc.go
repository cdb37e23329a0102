// Package client is a typed Go client for the replicad agent's HTTP API
// (DESIGN.md section 6): records, queries and views (live ones too:
// Watch, LiveResult), conflicts, sync errors, sync now, connectivity,
// status, the change feed and reset. The replicad CLI uses
// it, and apps on the device can import it too.
//
// Every method takes a context. An error the agent answered with (a 4xx
// or 5xx and its {"error": ...} body) is an [*APIError]; others are
// transport errors. Field values are JSON (json.RawMessage) as the API
// carries them.
package client
