package api

import "encoding/json"

// Draft is a record's unpublished field values, kept on the device only
// (never synced) until it is committed (GET /v1/drafts/{table}/{id}).
type Draft struct {
	Table   string                     `json:"table"`
	ID      string                     `json:"id"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Created string                     `json:"created"`
	Updated string                     `json:"updated"`
	Rev     uint64                     `json:"rev"`
	// RecordExists: the record exists on the device (else a commit
	// creates it).
	RecordExists bool `json:"record_exists"`
	// Changed: writes to the record arrived or were made since the draft
	// was started (a commit still sets the draft's values over them).
	Changed bool `json:"changed_since_draft"`
}

// DraftedRecord is a record with its draft's values laid over its
// fields, and the draft (nil if there is none): the answer of PUT and
// GET /v1/tables/{table}/records/{id}?draft=true.
type DraftedRecord struct {
	Record
	Draft *Draft `json:"draft"`
}

// DraftPage is one page of GET /v1/drafts.
type DraftPage struct {
	Drafts []Draft `json:"drafts"`
	Next   string  `json:"next"` // TABLE/ID to pass as after; "" at the end
}

// DiscardedDraft is the answer of DELETE /v1/drafts/{table}/{id}.
type DiscardedDraft struct {
	Discarded Draft `json:"discarded"`
}

// OnlineRecord is a record read live from the hub through the agent
// (GET /v1/tables/{table}/records/{id}?online=true): the hub's answer,
// marked online, with the hub API it came from.
type OnlineRecord struct {
	Record
	Online bool   `json:"online"`
	HubAPI string `json:"hub_api,omitempty"`
}

// OnlinePage is one page of records listed live from the hub
// (GET /v1/tables/{table}/records?online=true).
type OnlinePage struct {
	Page
	Online bool   `json:"online"`
	HubAPI string `json:"hub_api,omitempty"`
}
