package api

import "encoding/json"

// SyncError is an entry of the sync-error log (GET /v1/sync-errors).
type SyncError struct {
	ID      uint64                     `json:"id"`
	Time    string                     `json:"time"` // "" for an entry stored without one
	Table   string                     `json:"table"`
	Record  string                     `json:"record"`
	Fields  []string                   `json:"fields"`
	Losing  map[string]json.RawMessage `json:"losing"`
	Winning map[string]json.RawMessage `json:"winning"`
	Policy  string                     `json:"policy"`
	Nodes   []string                   `json:"nodes"`
	Detail  string                     `json:"detail"`
	Retried bool                       `json:"retried"`
	// Kind is "rejected" (a change undone: server-wins, permissions) or
	// "overridden" (lww or client-wins kept another value).
	Kind string `json:"kind"`
}

// SyncErrorList is the answer of GET /v1/sync-errors.
type SyncErrorList struct {
	Errors []SyncError `json:"errors"`
}

// Stats counts what sync sessions did.
type Stats struct {
	WritesSent     uint64 `json:"writes_sent"`
	WritesApplied  uint64 `json:"writes_applied"`
	Duplicates     uint64 `json:"duplicates"`
	Parked         uint64 `json:"parked"`
	RecordsFetched uint64 `json:"records_fetched"`
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`
}

// Summary reports a sync round (POST /v1/sync).
type Summary struct {
	Partners  int      `json:"partners"`
	Succeeded int      `json:"succeeded"`
	Failed    []string `json:"failed"`
	Stats     Stats    `json:"stats"`
	Millis    int64    `json:"millis"`
	// Decisions (on a device): the arbiter's decisions on the writes it
	// made before the sync; SyncErrors: those received during the call.
	Decisions  *Decisions  `json:"decisions,omitempty"`
	SyncErrors []SyncError `json:"sync_errors,omitempty"`
}

// Decisions is the state of the arbiter's decisions on a device's
// writes to client-wins and server-wins tables when a sync returns.
type Decisions struct {
	// State: "decided" (an arbitrating hub has decided every write the
	// device made before the call, and the outcomes are on the device),
	// "undecided" (the wait ended first, or the arbiter is unreachable:
	// Undecided lists up to 20 of them, Count all), "tentative" (no
	// arbitrating hub is known: they stay tentative), or "none" (no
	// arbitrating hub is known, and no table is client-wins or
	// server-wins by the policies the device holds).
	State     string      `json:"state"`
	Detail    string      `json:"detail,omitempty"`
	WaitedMs  int64       `json:"waited_ms"`
	Count     int         `json:"undecided_count,omitempty"`
	Undecided []Undecided `json:"undecided,omitempty"` // at most 20
}

// Undecided is a write the arbiter has not decided yet.
type Undecided struct {
	Table string `json:"table"`
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
}

// ConnectivityRequest is the body of POST /v1/connectivity (its answer
// has the same form): put the node online or offline.
type ConnectivityRequest struct {
	Online *bool `json:"online"`
}

// Partner is a sync partner's state as the sync engine knows it.
type Partner struct {
	Addr        string `json:"addr"`
	Node        string `json:"node"`
	Role        string `json:"role"`
	LastSuccess string `json:"last_success,omitempty"`
	LastAttempt string `json:"last_attempt,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	Failures    int    `json:"failures"`
	NextTry     string `json:"next_try,omitempty"`
	SkewMs      int64  `json:"skew_ms"`
	Last        Stats  `json:"last_session"`
	// APIAddr and GossipAddr are what a hub this node dials advertised
	// in the sync handshake.
	APIAddr    string `json:"api_addr,omitempty"`
	GossipAddr string `json:"gossip_addr,omitempty"`
}

// Peer is one row of the peer table (GET /v1/peers, and "peers" in
// GET /v1/status): a node that synced with this one, in one direction.
type Peer struct {
	Partner
	// Direction is "dialed" (this node dials the peer) or "served" (the
	// peer dialed this node): a peer syncing both ways has two rows.
	Direction     string `json:"direction"`
	Version       string `json:"version,omitempty"`
	FirstSeen     string `json:"first_seen,omitempty"`
	LastSessionAt string `json:"last_session_at,omitempty"`
	Result        string `json:"result,omitempty"` // of the last session: ok, refused, failed
	Sessions      uint64 `json:"sessions"`
	WritesIn      uint64 `json:"writes_received"` // over every session
	WritesOut     uint64 `json:"writes_sent"`
	DurationMs    int64  `json:"last_duration_ms"`
	// Only in GET /v1/peers (they read more than memory): writes held by
	// the node that the peer did not hold at its last session, and the
	// sync-error log's entries naming the peer, not retried.
	Pending    *uint64 `json:"pending,omitempty"`
	SyncErrors *int    `json:"sync_errors,omitempty"`
}

// PeerList is the answer of GET /v1/peers.
type PeerList struct {
	Peers []Peer `json:"peers"`
}
