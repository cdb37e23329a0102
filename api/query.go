package api

// Plan is how a query was answered (GET .../records?explain=true and
// GET /v1/views/{name}?explain=true, in Page.Plan).
type Plan struct {
	// Index is the secondary index the query walked; null for a scan of
	// the table.
	Index *string `json:"index"`
	// Examined counts the records read to answer.
	Examined int `json:"examined"`
}

// Count is the answer of a query with count=true: how many records
// match (the limit and cursor do not apply).
type Count struct {
	Count int `json:"count"`
}

// View is a named query declared on a hub and distributed to every
// replica (GET /v1/views). Where may name device.* attributes, resolved
// with the asking device's own.
type View struct {
	Name  string   `json:"name"`
	Table string   `json:"table"`
	Where string   `json:"where"`
	Order []string `json:"order"`
	// Count is how many records the view holds here now; Error replaces
	// it when the view cannot run on this replica (it is then 0).
	Count int    `json:"count"`
	Error string `json:"error,omitempty"`
}

// ViewList is the answer of GET /v1/views, sorted by name.
type ViewList struct {
	Views []View `json:"views"`
}

// WatchEvent is one event of a live query or view (watch=true): the
// data of one server-sent event (its SSE id and event name are ID and
// Type), or one entry of a long-poll answer.
type WatchEvent struct {
	// Type is "result" (Records is the current result, the first
	// event), "reset" (Records replaces the client's result: resuming
	// from ID was not possible), "add" (Record entered the result),
	// "change" (Record, in the result, changed), "remove" (the record
	// RecordID left the result) or "overflow" (the subscriber fell
	// behind and is cut: resume from the last ID received).
	Type string `json:"type"`
	// ID resumes after this event (SSE Last-Event-ID, long-poll
	// last_event_id); "" for an event inside a round of changes, which
	// resumes from the round's last event.
	ID       string   `json:"id,omitempty"`
	RecordID string   `json:"record_id,omitempty"` // add, change, remove
	Record   *Record  `json:"record,omitempty"`    // add, change
	Records  []Record `json:"records,omitempty"`   // result, reset (absent when empty)
	Error    string   `json:"error,omitempty"`     // overflow: why
}

// WatchPage is one long-poll answer of a live query or view (watch=true
// without Accept: text/event-stream): the events after last_event_id,
// waiting up to timeout for the first one.
type WatchPage struct {
	Events []WatchEvent `json:"events"`
	// LastEventID is the last_event_id to pass next time (the one given
	// when no event came).
	LastEventID string `json:"last_event_id"`
}

// IndexStatus is a secondary index in GET /v1/status: its declaration
// and its build on this replica.
type IndexStatus struct {
	Name   string   `json:"name"`
	Table  string   `json:"table"`
	Fields []string `json:"fields"`
	// Built: every record is indexed and queries use the index; until
	// then Indexed counts the records the background build visited.
	Built   bool  `json:"built"`
	Indexed int64 `json:"indexed"`
	// Error says why this replica keeps no such index (its store is
	// encrypted at rest: queries scan).
	Error string `json:"error,omitempty"`
}
