package httpapi

import (
	"net/http"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
)

// Requests and NodeRecords are what the extensions' Hosts ask of the
// public API.
var (
	_ extapi.Requests = Requests{}
	_ extapi.Records  = NodeRecords{}
)

// Requests reads a request as the public API does, for the extensions
// that serve routes (their Host's extapi.Requests); Guard refuses a write
// to a table (Core.GuardWrite).
type Requests struct{ Guard func(table string) error }

// RecordNames returns the table and record id of r's path (Records.Names).
func (q Requests) RecordNames(r *http.Request) (string, string, error) {
	return RecordNames(r, q.Guard)
}

// DecodeBody decodes one JSON object into v (DecodeBody).
func (Requests) DecodeBody(r *http.Request, v any) error { return DecodeBody(r, v) }

// PutFields decodes a PUT body; check (nil: none) judges the number of
// fields before their values are converted; present: it had "fields".
func (Requests) PutFields(r *http.Request, check func(n int) error) ([]crdt.FieldValue, bool, error) {
	var body PutBody
	if err := DecodeBody(r, &body); err != nil {
		return nil, false, err
	}
	if check != nil {
		if err := check(len(body.Fields)); err != nil {
			return nil, body.Fields != nil, err
		}
	}
	if body.Fields == nil {
		return nil, false, nil
	}
	fields, err := body.Values()
	return fields, true, err
}

// PageLimit is the request's ?limit (DefaultPageLimit, at most
// MaxPageLimit).
func (Requests) PageLimit(r *http.Request) (int, error) {
	return IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
}

// NodeRecords is a replica's node as the extensions that serve record
// routes see it (extapi.Records): the node with the public API's record
// look-up (Existing: 404 saying why) and view (node.Node.View).
type NodeRecords struct{ *node.Node }

// Existing returns a record that exists here, or a 404 saying why not.
func (n NodeRecords) Existing(table, id string) (*crdt.Record, error) {
	return Existing(n.Store(), table, id)
}

// RecordView is table/id as the API shows it.
func (n NodeRecords) RecordView(table, id string, rec *crdt.Record) api.Record {
	return n.View(table, id, rec)
}
