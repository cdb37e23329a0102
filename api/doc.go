// Package api holds the HTTP wire types shared by the server and the
// client: one declaration of each request and response body of the
// agent's HTTP API (records, conflicts, the change feed, sync summaries,
// status, sync errors, parked writes, peers, drafts, online reads,
// duplicates, workflows, profiles, security, grants, compact and reset).
// The agent encodes them, the client (package client) and the CLI decode
// them, and the wire tests pin their JSON form so the two sides cannot
// drift apart.
//
// It depends on the standard library only: no agent, store or HTTP
// server code. Times are RFC 3339 strings in UTC, hybrid logical clock
// stamps "WALL.LOGICAL" (WALL in Unix milliseconds), field values JSON
// (json.RawMessage) as the API carries them.
package api
