package api

import "encoding/json"

// Error is the body of every error answer (a 4xx or 5xx status).
type Error struct {
	Error string `json:"error"`
}

// Candidate is one live candidate of a conflicted field.
type Candidate struct {
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node"`
	HLC     string          `json:"hlc"`
	Time    string          `json:"time"` // the HLC's wall clock, RFC 3339 UTC
	Deleted bool            `json:"deleted,omitempty"`
}

// Record is a record as the API shows it: its visible values (the
// last-writer-wins view) and, per conflicted field, every candidate
// (answer of GET, PUT and DELETE /v1/tables/{table}/records/{id}, of a
// resolution, a retry and a draft's commit).
type Record struct {
	Table     string                     `json:"table"`
	ID        string                     `json:"id"`
	Fields    map[string]json.RawMessage `json:"fields"`
	Conflicts map[string][]Candidate     `json:"conflicts"`
	// Bases: per conflicted field, the value its candidates started from,
	// when the replica knows it (manual tables).
	Bases   map[string]*Candidate `json:"bases,omitempty"`
	Pending bool                  `json:"pending"`
	Deleted bool                  `json:"deleted,omitempty"`
}

// PutRequest is the body of PUT /v1/tables/{table}/records/{id}: the
// fields to set (with ?draft=true, in the record's draft).
type PutRequest struct {
	Fields map[string]json.RawMessage `json:"fields"`
}

// Page is one page of GET /v1/tables/{table}/records.
//
// A query (where, order, cursor or fields given) answers a Page too:
// Next is then the opaque cursor of the next page, and Plan is set with
// explain=true.
type Page struct {
	Records []Record `json:"records"`
	Next    string   `json:"next"` // the after (or cursor) of the next page; "" at the end
	Plan    *Plan    `json:"plan,omitempty"`
}

// Conflict is a field with several live candidates, or a suspected
// duplicate record (GET /v1/conflicts).
type Conflict struct {
	Table      string      `json:"table"`
	ID         string      `json:"id"`
	Field      string      `json:"field"`
	Candidates []Candidate `json:"candidates"`
	Base       *Candidate  `json:"base,omitempty"` // the value the candidates started from, if known
	// Kind is "field" (concurrent values of a field) or "duplicate" (a
	// suspected duplicate record: Field is "" and Candidates empty, With
	// the records it matched, Keys their key values).
	Kind string                     `json:"kind"`
	With []string                   `json:"with,omitempty"`
	Keys map[string]json.RawMessage `json:"keys,omitempty"`
}

// ConflictList is the answer of GET /v1/conflicts.
type ConflictList struct {
	Conflicts []Conflict `json:"conflicts"`
}

// ResolveRequest is the body of POST /v1/conflicts/{table}/{id}/{field}:
// exactly one of Pick (a candidate's index, as listed) or Value (a JSON
// value to write instead).
type ResolveRequest struct {
	Pick  *int            `json:"pick,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Change is one entry of the change feed (GET /v1/changes; one event of
// its server-sent event stream).
type Change struct {
	Cursor string `json:"cursor"`
	Table  string `json:"table"`
	ID     string `json:"id"`
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
}

// Changes is one long-poll answer of the change feed.
type Changes struct {
	Changes []Change `json:"changes"`
	Next    string   `json:"next"` // the cursor to pass as since next time
}
