package extapi

import (
	"fmt"
	"net/http"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Registrar adds a route whose handler returns a value (answered as
// JSON) or an error (answered with its status): the agent's HTTP API.
type Registrar interface {
	Handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) (any, error))
}

// Error is an answer's error with its HTTP status; the agent's API
// answers it like its own (its Status method).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Status is the HTTP status the error is answered with.
func (e *Error) Status() int { return e.Code }

// Errorf returns an *Error of status code.
func Errorf(code int, format string, args ...any) error {
	return &Error{code, fmt.Sprintf(format, args...)}
}

// Current runs fn on the current replica R (a reset or a store recovery
// may replace it between calls); fn's error is the answer's.
type Current[R any] interface {
	With(fn func(r R) (any, error)) (any, error)
}

// Requests reads a request as the public API does.
type Requests interface {
	// RecordNames validates a record route's table and id.
	RecordNames(r *http.Request) (table, id string, err error)
	// DecodeBody decodes one JSON object, refusing unknown fields.
	DecodeBody(r *http.Request, v any) error
	// PutFields decodes a PUT body ({"fields": {...}}); check (nil:
	// none) judges the number of fields given before their values are
	// converted. present: the body had "fields".
	PutFields(r *http.Request, check func(n int) error) (fields []crdt.FieldValue, present bool, err error)
	// PageLimit is the request's ?limit.
	PageLimit(r *http.Request) (int, error)
}

// Node is what every Host gives: the replica's store and node id, and a
// logger named for the extension.
type Node interface {
	Store() *store.Store
	ID() hlc.NodeID
	Log() hclog.Logger
}

// Writer is the node's write pipeline for a local write.
type Writer interface {
	Write(table, id string, fields []crdt.FieldValue, del bool, also node.LocalHook) (*store.WriteResult, error)
}

// Decider is the node's write pipeline for a decided write (fields chosen
// under the store's write mutex) and its sync errors sent to every
// replica.
type Decider interface {
	WriteDecided(table, id string, decide func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool), also node.LocalHook) (*store.WriteResult, error)
	PublishSyncError(id string, e *store.SyncError) error
}

// Records is the replica as the routes that read and write records see
// it: its store and node id, the write pipeline, and the public API's
// record look-up and view.
type Records interface {
	Store() *store.Store
	ID() hlc.NodeID
	Writer
	// Existing returns the record, or the public API's 404.
	Existing(table, id string) (*crdt.Record, error)
	// RecordView is the record as the public API shows it.
	RecordView(table, id string, rec *crdt.Record) api.Record
}

// RecordsHost is the Host of a record API (drafts, duplicates): the
// current replica's records and the public API's request parsing.
type RecordsHost interface {
	Current[Records]
	Requests
}
