package api

import "encoding/json"

// Duplicate is a suspected duplicate flagged by the hub: record ID of
// Table has the same key values as the records With
// (GET /v1/duplicates). Field and Candidates are always empty: they give
// it the shape of a conflict.
type Duplicate struct {
	Kind       string                     `json:"kind"` // "duplicate"
	Table      string                     `json:"table"`
	ID         string                     `json:"id"`
	Field      string                     `json:"field"`
	Candidates []Candidate                `json:"candidates"`
	With       []string                   `json:"with"`
	Keys       map[string]json.RawMessage `json:"keys"`
	Status     string                     `json:"status"` // open, kept, merged, discarded
	Detected   string                     `json:"detected,omitempty"`
	Resolution json.RawMessage            `json:"resolution,omitempty"`
	Flag       string                     `json:"flag"` // its id in the flags' system table
}

// DuplicateList is the answer of GET /v1/duplicates.
type DuplicateList struct {
	Duplicates []Duplicate `json:"duplicates"`
}

// DuplicateRequest is the body of POST /v1/duplicates/{table}/{id}.
type DuplicateRequest struct {
	Action string `json:"action"`           // keep, merge, discard
	With   string `json:"with,omitempty"`   // the other record (merge); default: the only one it matched
	Prefer string `json:"prefer,omitempty"` // merge: "existing" (default) or "new": whose values win where both have one
}

// DuplicateResolution is the answer of POST /v1/duplicates/{table}/{id}.
type DuplicateResolution struct {
	Duplicate Duplicate `json:"duplicate"`
	Record    *Record   `json:"record,omitempty"` // the survivor of a merge
}

// Workflow is a hub workflow's state.
type Workflow struct {
	Name            string   `json:"name"`
	Table           string   `json:"table"`
	Webhook         string   `json:"webhook,omitempty"`
	Command         []string `json:"command,omitempty"`
	Cursor          string   `json:"cursor"`
	FeedHead        string   `json:"feed_head"`
	State           string   `json:"state"` // idle, delivering, retrying
	Current         string   `json:"current,omitempty"`
	CurrentAttempts int      `json:"current_attempts,omitempty"`
	CurrentError    string   `json:"current_error,omitempty"`
	NextTry         string   `json:"next_try,omitempty"`
	Delivered       uint64   `json:"delivered"`
	Failed          uint64   `json:"failed"`
	Attempts        uint64   `json:"attempts"`
	LastError       string   `json:"last_error,omitempty"`
	LastErrorAt     string   `json:"last_error_at,omitempty"`
	LastDeliveredAt string   `json:"last_delivered_at,omitempty"`
}

// WorkflowList is the answer of GET /v1/workflows.
type WorkflowList struct {
	Workflows []Workflow `json:"workflows"`
}

// WorkflowDetail is the answer of GET /v1/workflows/{name}: its state
// and its latest deliveries.
type WorkflowDetail struct {
	Workflow   Workflow   `json:"workflow"`
	Deliveries []Delivery `json:"deliveries"`
}

// Delivery is the recorded outcome of one change for a workflow.
type Delivery struct {
	Cursor   string `json:"cursor"`
	Table    string `json:"table"`
	ID       string `json:"id"`
	Origin   string `json:"origin,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Status   string `json:"status"` // delivered, failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	TimeMs   int64  `json:"time"` // Unix milliseconds
	At       string `json:"at"`   // the same, RFC 3339 UTC
}

// DeliveryPage is the answer of GET /v1/workflows/{name}/deliveries:
// outcomes newest first; Next is the before of the next page ("" at the
// end).
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	Next       string     `json:"next"`
}

// TableCount is what a profile puts on a device from one table.
type TableCount struct {
	Table   string `json:"table"`
	Records int    `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// Preview is what a device's offline profile would put on it
// (GET /v1/profiles/preview on a hub).
type Preview struct {
	Device  string       `json:"device"`
	Profile string       `json:"profile,omitempty"`
	All     bool         `json:"all,omitempty"` // no profile: every record
	Tables  []TableCount `json:"tables"`
	Records int          `json:"records"`
	Bytes   int64        `json:"bytes"`
}

// ProfilesReloaded is the answer of POST /v1/profiles/reload: the
// profiles now loaded.
type ProfilesReloaded struct {
	Profiles []string `json:"profiles"`
}
