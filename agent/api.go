package agent

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

//go:embed ui/index.html
var uiFS embed.FS

// Limits of the API.
const (
	defaultPageLimit   = 100
	maxPageLimit       = 1000
	defaultPollTimeout = 30 * time.Second
	maxPollTimeout     = 120 * time.Second
	maxConflictScan    = 100000 // conflict index entries examined by GET /v1/conflicts
)

// apiError is an error with an HTTP status.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errf(code int, format string, args ...any) error {
	return &apiError{code, fmt.Sprintf(format, args...)}
}

// handler adapts a function returning (value, error) to JSON responses.
func (a *Agent) handle(fn func(w http.ResponseWriter, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(w, r)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if v == nil {
			return // the handler wrote the response
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func (a *Agent) writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrClosed), errors.Is(err, errResetting), errors.Is(err, errRecovering), errors.Is(err, store.ErrFailed):
		code = http.StatusServiceUnavailable
	}
	if code >= 400 && code < 500 {
		a.metrics.rejected.WithLabelValues(strconv.Itoa(code)).Inc()
	} else {
		a.log.Error("api request failed", "error", err)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

var errResetting = errors.New("the replica is being reset; retry shortly")

// replica returns the current replica with a.mu held shared; call
// a.mu.RUnlock when done.
func (a *Agent) acquire() (*replica, error) {
	a.mu.RLock()
	if a.rep == nil {
		recovering := a.recovering
		a.mu.RUnlock()
		if recovering {
			return nil, errRecovering
		}
		return nil, errResetting
	}
	return a.rep, nil
}

// with runs fn on the current replica.
func (a *Agent) with(fn func(r *replica) (any, error)) (any, error) {
	r, err := a.acquire()
	if err != nil {
		return nil, err
	}
	defer a.mu.RUnlock()
	return fn(r)
}

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/tables/{table}/records/{id}", a.handle(a.putRecordModes))
	mux.HandleFunc("GET /v1/tables/{table}/records/{id}", a.handle(a.getRecordModes))
	mux.HandleFunc("DELETE /v1/tables/{table}/records/{id}", a.handle(a.deleteRecordModes))
	mux.HandleFunc("GET /v1/tables/{table}/records", a.handle(a.listRecordsModes)) // ?draft, ?online: drafts.go, onlinereads.go
	a.draftRoutes(mux)
	mux.HandleFunc("GET /v1/conflicts", a.handle(a.listConflicts))
	mux.HandleFunc("POST /v1/conflicts/{table}/{id}/{field}", a.handle(a.resolveConflict))
	mux.HandleFunc("GET /v1/sync-errors", a.handle(a.listSyncErrors))
	mux.HandleFunc("POST /v1/sync-errors/{eid}/retry", a.handle(a.retrySyncError))
	mux.HandleFunc("POST /v1/sync", a.handle(a.syncNow))
	mux.HandleFunc("POST /v1/connectivity", a.handle(a.connectivity))
	mux.HandleFunc("GET /v1/status", a.handle(a.status))
	mux.HandleFunc("GET /v1/peers", a.handle(a.listPeers)) // peers.go
	mux.HandleFunc("GET /v1/changes", a.handle(a.changes))
	mux.HandleFunc("POST /v1/reset", a.handle(a.reset))
	mux.HandleFunc("POST /v1/compact", a.handle(a.compact)) // compact.go
	mux.HandleFunc("GET /v1/parked", a.handle(a.listParked))
	mux.HandleFunc("GET /v1/profiles", a.handle(a.getProfiles))
	mux.HandleFunc("GET /v1/profiles/preview", a.handle(a.previewProfile))
	mux.HandleFunc("POST /v1/profiles/reload", a.handle(a.reloadProfiles))
	mux.HandleFunc("POST /v1/parked/{origin}/{seq}/release", a.handle(a.releaseParked))
	a.debugRoutes(mux) // testing only: agent/debug.go
	a.pprofRoutes(mux) // REPLICAD_PPROF=1: agent/pprof.go
	// Duplicates and workflows: agent/online_api.go.
	a.onlineRoutes(mux)
	mux.Handle("GET /metrics", a.metrics.handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := uiFS.ReadFile("ui/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(b)
	})
	a.routeOf = func(r *http.Request) string { _, p := mux.Handler(r); return p } // the metrics' route label
	// No catch-all pattern: a known path under a wrong method is a 405
	// with Allow, anything else a 404 (routing.go).
	return http.MaxBytesHandler(a.routed(mux, a.notFound()), a.cfg.MaxBodyBytes)
}

// decodeBody decodes one JSON object into v, refusing unknown fields and
// trailing data.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errf(http.StatusBadRequest, "empty request body: want a JSON object")
	}
	if err := checkBodyUTF8(data); err != nil { // jsonexact.go
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, data, v) // apierrors.go
	}
	if dec.More() {
		return errf(http.StatusBadRequest, "malformed JSON body: data after the object at offset %d", skipSpace(data, dec.InputOffset()))
	}
	return nil
}

func names(r *http.Request) (table, id string, err error) {
	table, id = r.PathValue("table"), r.PathValue("id")
	if !store.ValidTable(table) {
		return "", "", errf(http.StatusBadRequest, "bad table name %q: 1-%d characters from [A-Za-z0-9_.-]", table, store.MaxTableLen)
	}
	if !store.ValidID(id) {
		return "", "", errf(http.StatusBadRequest, "bad record id %q: 1-%d bytes of UTF-8 without NUL", id, store.MaxIDLen)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Every route that writes a record names it here (systables.go).
		if err := guardSystemWrite(table); err != nil {
			return "", "", err
		}
	}
	return table, id, nil
}

// --- records ---

// Candidate is one live candidate of a field in API responses.
type candidateJSON struct {
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node"`
	HLC     string          `json:"hlc"`
	Time    string          `json:"time"` // the HLC's wall clock, RFC 3339 UTC
	Deleted bool            `json:"deleted,omitempty"`
}

type recordJSON struct {
	Table     string                     `json:"table"`
	ID        string                     `json:"id"`
	Fields    map[string]json.RawMessage `json:"fields"`
	Conflicts map[string][]candidateJSON `json:"conflicts"`
	// Bases: per conflicted field, the value its candidates started from,
	// when this replica knows it (manual tables).
	Bases   map[string]*candidateJSON `json:"bases,omitempty"`
	Pending bool                      `json:"pending"`
	Deleted bool                      `json:"deleted,omitempty"`
}

func jsonValue(v crdt.Value) json.RawMessage {
	b, err := v.JSON()
	if err != nil {
		// Values come from JSON or msgpack peers; one that has no JSON
		// form (binary) is shown as a string of its msgpack rendering.
		b, _ = json.Marshal(v.String())
	}
	return b
}

// existsField names, in conflicts, a delete concurrent with an update of
// the record (manual policy): its candidates are the update (value null)
// and the delete ("deleted": true); picking one keeps or deletes the
// record.
const existsField = "_exists"

func candidates(es []crdt.Entry) []candidateJSON {
	out := make([]candidateJSON, 0, len(es))
	for _, e := range es {
		c := candidateJSON{Node: e.Origin.String(), HLC: e.TS.String(), Time: time.UnixMilli(e.TS.Wall()).UTC().Format(time.RFC3339Nano), Value: json.RawMessage("null")}
		if e.Delete {
			c.Deleted = true
		} else {
			c.Value = jsonValue(e.Value)
		}
		out = append(out, c)
	}
	return out
}

func (r *replica) recordView(table, id string, rec *crdt.Record) recordJSON {
	out := recordJSON{Table: table, ID: id, Fields: map[string]json.RawMessage{}, Conflicts: map[string][]candidateJSON{}, Deleted: !rec.Exists()}
	rec.Visible(func(name string, v crdt.Value) { out.Fields[name] = jsonValue(v) })
	k := r.policyOf(table)
	for _, c := range policy.Conflicts(k, rec) {
		name := c.Field
		if name == "" {
			name = existsField
		}
		out.Conflicts[name] = candidates(c.Candidates)
		if c.Field != "" {
			if b := r.baseOf(table, id, c.Field); b != nil {
				if out.Bases == nil {
					out.Bases = map[string]*candidateJSON{}
				}
				out.Bases[name] = b
			}
		}
	}
	out.Pending = r.pending(k, rec)
	return out
}

type putBody struct {
	Fields map[string]json.RawMessage `json:"fields"`
}

// values converts the body's JSON fields to field values (400 on an empty
// name or a value that does not convert).
func (b *putBody) values() ([]crdt.FieldValue, error) {
	fields := make([]crdt.FieldValue, 0, len(b.Fields))
	for name, raw := range b.Fields {
		if name == "" {
			return nil, errf(http.StatusBadRequest, "empty field name")
		}
		v, err := exactValue(raw) // jsonexact.go
		if err != nil {
			return nil, errf(http.StatusBadRequest, "field %q: %v", name, err)
		}
		fields = append(fields, crdt.FieldValue{Name: name, Value: v})
	}
	return fields, nil
}

func (a *Agent) putRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	var body putBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Fields == nil {
		return nil, errf(http.StatusBadRequest, `body needs "fields": an object of field names to JSON values`)
	}
	fields, err := body.values()
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		if len(fields) == 0 {
			// No fields: an existing record is left as it is (nothing
			// written, nothing to sync); an absent or deleted one is
			// created empty below, like touching a file.
			if rec, err := rp.store.Get(table, id); err == nil && rec.Exists() {
				return rp.recordView(table, id, rec), nil
			}
		}
		res, err := rp.localWrite(table, id, fields, false)
		if err != nil {
			return nil, err
		}
		return rp.recordView(table, id, res.Record), nil
	})
}

// existing returns a record that exists here, or a 404 saying why not.
func (rp *replica) existing(table, id string) (*crdt.Record, error) {
	rec, err := rp.store.Get(table, id)
	switch {
	case errors.Is(err, store.ErrOutOfScope):
		return nil, errf(http.StatusNotFound, "record %s/%s is not in this device's offline profile", table, id)
	case errors.Is(err, store.ErrNotFound) || err == nil && !rec.Exists():
		return nil, errf(http.StatusNotFound, "record %s/%s not found", table, id)
	}
	return rec, err
}

func (a *Agent) getRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		rec, err := rp.existing(table, id)
		if err != nil {
			return nil, err
		}
		return rp.recordView(table, id, rec), nil
	})
}

func (a *Agent) deleteRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		if _, err := rp.existing(table, id); err != nil {
			return nil, err
		}
		res, err := rp.localWrite(table, id, nil, true)
		if err != nil {
			return nil, err
		}
		return rp.recordView(table, id, res.Record), nil
	})
}

func intParam(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errf(http.StatusBadRequest, "%s=%q: want a non-negative integer", name, s)
	}
	if n == 0 {
		n = def
	}
	return min(n, max), nil
}

func (a *Agent) listRecords(w http.ResponseWriter, r *http.Request) (any, error) {
	table := r.PathValue("table")
	if !store.ValidTable(table) {
		return nil, errf(http.StatusBadRequest, "bad table name %q", table)
	}
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	after := r.URL.Query().Get("after")
	return a.with(func(rp *replica) (any, error) {
		out := []recordJSON{}
		next := after
		for {
			page, n, err := rp.store.Scan(table, next, limit-len(out))
			if err != nil {
				return nil, err
			}
			for _, e := range page {
				if e.Record.Exists() {
					out = append(out, rp.recordView(table, e.ID, e.Record))
				}
			}
			next = n
			if next == "" || len(out) >= limit {
				break
			}
		}
		if len(out) < limit {
			next = ""
		} else if len(out) > 0 {
			next = out[len(out)-1].ID
		}
		return map[string]any{"records": out, "next": next}, nil
	})
}

// --- conflicts ---

type conflictJSON struct {
	Table      string          `json:"table"`
	ID         string          `json:"id"`
	Field      string          `json:"field"`
	Candidates []candidateJSON `json:"candidates"`
	Base       *candidateJSON  `json:"base,omitempty"` // the value the candidates started from, if known
	// Kind is "field" (concurrent values of a field) or "duplicate" (a
	// suspected duplicate record: dedupe.go; Field is "" and Candidates
	// empty, With the records it matched, Keys their key values).
	Kind string                     `json:"kind"`
	With []string                   `json:"with,omitempty"`
	Keys map[string]json.RawMessage `json:"keys,omitempty"`
}

// conflicts lists the fields with more than one live candidate that
// their table's policy shows as conflicts (manual), from the store's
// conflict index (records with concurrent candidates; at most
// maxConflictScan of them examined), so that its cost follows the
// conflicts, not the records.
func (rp *replica) conflicts() ([]conflictJSON, error) {
	out := []conflictJSON{}
	afterT, afterID, seen := "", "", 0
	for seen < maxConflictScan {
		refs, err := rp.store.ConflictedRecords(afterT, afterID, 500)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			seen++
			t := ref.Table
			k := rp.policyOf(t)
			if k != policy.Manual {
				continue
			}
			rec, err := rp.store.Get(t, ref.ID)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrOutOfScope) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !rec.Exists() && !rec.ExistConflict() {
				continue
			}
			for _, c := range policy.Conflicts(k, rec) {
				name := c.Field
				if name == "" {
					name = existsField
				}
				cj := conflictJSON{Kind: "field", Table: t, ID: ref.ID, Field: name, Candidates: candidates(c.Candidates)}
				if c.Field != "" {
					cj.Base = rp.baseOf(t, ref.ID, c.Field)
				}
				out = append(out, cj)
			}
		}
		if len(refs) < 500 {
			break
		}
		afterT, afterID = refs[len(refs)-1].Table, refs[len(refs)-1].ID
	}
	dups, err := rp.duplicateConflicts()
	if err != nil {
		return nil, err
	}
	return append(out, dups...), nil
}

// counts: syncErrors and overridden are the sync errors not retried of
// kind rejected and overridden.
type counts struct{ conflicts, syncErrors, overridden, parked int }

func (rp *replica) counts() counts {
	var c counts
	if cs, err := rp.conflicts(); err == nil {
		c.conflicts = len(cs)
	}
	after := uint64(0)
	for {
		es, err := rp.store.ListSyncErrors(after, 1000)
		if err != nil || len(es) == 0 {
			break
		}
		for _, e := range es {
			switch {
			case e.Retried:
			case syncErrorKind(e.Kind, e.Policy) == kindOverridden:
				c.overridden++
			default:
				c.syncErrors++
			}
		}
		after = es[len(es)-1].ID
	}
	c.parked, _ = rp.store.ParkedCount()
	return c
}

func (a *Agent) listConflicts(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		cs, err := rp.conflicts()
		if err != nil {
			return nil, err
		}
		return map[string]any{"conflicts": cs}, nil
	})
}

type resolveBody struct {
	Pick  *int            `json:"pick"`
	Value json.RawMessage `json:"value"`
}

// resolveConflict writes the chosen value of a conflicted field. The
// write's causal context is the record's (store.Write), which covers every
// candidate, so it supersedes them all on every replica. Picking a delete
// marker deletes the record.
func (a *Agent) resolveConflict(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	field := r.PathValue("field")
	var body resolveBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if (body.Pick == nil) == (body.Value == nil) {
		return nil, errf(http.StatusBadRequest, `give exactly one of "pick" (a candidate's index) or "value" (a JSON value)`)
	}
	var val crdt.Value
	if body.Value != nil {
		if val, err = exactValue(body.Value); err != nil {
			return nil, errf(http.StatusBadRequest, "value: %v", err)
		}
	}
	return a.with(func(rp *replica) (any, error) {
		rec, err := rp.store.Get(table, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err != nil || rp.policyOf(table) != policy.Manual {
			return nil, errf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		if field == existsField {
			// A delete concurrent with an update: pick one.
			if !rec.ExistConflict() || body.Pick == nil {
				return nil, errf(http.StatusNotFound, "no delete/update conflict on %s/%s (resolve it with a pick)", table, id)
			}
			if *body.Pick < 0 || *body.Pick >= len(rec.Exist) {
				return nil, errf(http.StatusBadRequest, "pick %d: the record has candidates 0 to %d", *body.Pick, len(rec.Exist)-1)
			}
			// A delete that has seen the update removes the record. Keeping
			// it is a write that has seen the delete and sets again, on
			// every field where the delete's marker stands beside values,
			// the newest of them.
			del := rec.Exist[*body.Pick].Delete
			var fields []crdt.FieldValue
			if !del {
				for _, name := range rec.FieldNames() {
					var best *crdt.Entry
					marker := false
					for _, c := range rec.Candidates(name) {
						if c.Delete {
							marker = true
						} else if best == nil || best.Stamp().Less(c.Stamp()) {
							c := c
							best = &c
						}
					}
					if marker && best != nil {
						fields = append(fields, crdt.FieldValue{Name: name, Value: best.Value})
					}
				}
			}
			res, err := rp.localWrite(table, id, fields, del)
			if err != nil {
				return nil, err
			}
			return rp.recordView(table, id, res.Record), nil
		}
		if !rec.Exists() || !contains(rec.Conflicted(), field) {
			return nil, errf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		del := false
		if body.Pick != nil {
			cands := rec.Candidates(field)
			if *body.Pick < 0 || *body.Pick >= len(cands) {
				return nil, errf(http.StatusBadRequest, "pick %d: the field has candidates 0 to %d", *body.Pick, len(cands)-1)
			}
			c := cands[*body.Pick]
			val = c.Value
			if c.Delete {
				// A record delete's marker deletes the record; a cleared
				// field's marker clears the field.
				val = crdt.Cleared
				for _, d := range rec.Dels {
					if d.Dot() == c.Dot() {
						del = true
					}
				}
			}
		}
		var fields []crdt.FieldValue
		if !del {
			fields = []crdt.FieldValue{{Name: field, Value: val}}
		}
		res, err := rp.localWrite(table, id, fields, del)
		if err != nil {
			return nil, err
		}
		return rp.recordView(table, id, res.Record), nil
	})
}

// --- sync errors ---

type syncErrorJSON struct {
	ID      uint64                     `json:"id"`
	Time    string                     `json:"time"`
	Table   string                     `json:"table"`
	Record  string                     `json:"record"`
	Fields  []string                   `json:"fields"`
	Losing  map[string]json.RawMessage `json:"losing"`
	Winning map[string]json.RawMessage `json:"winning"`
	Policy  string                     `json:"policy"`
	Nodes   []string                   `json:"nodes"`
	Detail  string                     `json:"detail"`
	Retried bool                       `json:"retried"`
	// Kind: "rejected" (a change undone) or "overridden" (a policy's
	// ordinary outcome kept another value).
	Kind string `json:"kind"`
}

func syncErrorView(e *store.SyncError) syncErrorJSON {
	vals := func(m map[string][]byte) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k] = jsonValue(crdt.Value(v))
		}
		return out
	}
	nodes := []string{}
	for _, n := range e.Nodes {
		nodes = append(nodes, hlc.NodeID(n).String())
	}
	fields := e.Fields
	if fields == nil {
		fields = []string{}
	}
	at := "" // an entry stored without a time (older versions): unknown, not 1970
	if e.Time > 0 {
		at = time.UnixMilli(e.Time).UTC().Format(time.RFC3339Nano)
	}
	return syncErrorJSON{ID: e.ID, Time: at, Table: e.Table, Record: e.Record,
		Fields: fields, Losing: vals(e.Losing), Winning: vals(e.Winning), Policy: e.Policy, Nodes: nodes, Detail: e.Detail, Retried: e.Retried,
		Kind: syncErrorKind(e.Kind, e.Policy)}
}

func (a *Agent) listSyncErrors(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, errf(http.StatusBadRequest, "after=%q: want an error id", s)
		}
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != kindRejected && kind != kindOverridden {
		return nil, errf(http.StatusBadRequest, "kind=%q: want %s or %s", kind, kindRejected, kindOverridden)
	}
	return a.with(func(rp *replica) (any, error) {
		out := make([]syncErrorJSON, 0)
		for len(out) < limit {
			es, err := rp.store.ListSyncErrors(after, limit)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if v := syncErrorView(e); (kind == "" || v.Kind == kind) && len(out) < limit {
					out = append(out, v)
				}
			}
			if len(es) < limit {
				break
			}
			after = es[len(es)-1].ID
		}
		return map[string]any{"errors": out}, nil
	})
}

func (a *Agent) retrySyncError(w http.ResponseWriter, r *http.Request) (any, error) {
	eid, err := strconv.ParseUint(r.PathValue("eid"), 10, 64)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad sync-error id %q", r.PathValue("eid"))
	}
	return a.with(func(rp *replica) (any, error) {
		e, err := rp.store.GetSyncError(eid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(http.StatusNotFound, "no sync error %d", eid)
		}
		if err != nil {
			return nil, err
		}
		if !store.ValidTable(e.Table) || !store.ValidID(e.Record) {
			return nil, errf(http.StatusConflict, "sync error %d names no valid record", eid)
		}
		if err := guardSystemWrite(e.Table); err != nil {
			return nil, err
		}
		var fields []crdt.FieldValue
		for name, v := range e.Losing {
			if err := crdt.Value(v).Validate(); err != nil {
				return nil, errf(http.StatusConflict, "sync error %d: losing value of %q does not decode", eid, name)
			}
			fields = append(fields, crdt.FieldValue{Name: name, Value: crdt.Value(v)})
		}
		if len(fields) == 0 {
			return nil, errf(http.StatusConflict, "sync error %d holds no losing value to re-apply", eid)
		}
		res, err := rp.localWrite(e.Table, e.Record, fields, false)
		if err != nil {
			return nil, err
		}
		if err := rp.store.MarkSyncErrorRetried(eid); err != nil {
			return nil, err
		}
		return rp.recordView(e.Table, e.Record, res.Record), nil
	})
}

// --- sync, connectivity, status ---

// syncProgress is the running totals of the current API-triggered sync.
type syncProgress struct {
	mu      sync.Mutex
	running int
	started time.Time
	stats   replication.Stats
}

type statsJSON struct {
	WritesSent     uint64 `json:"writes_sent"`
	WritesApplied  uint64 `json:"writes_applied"`
	Duplicates     uint64 `json:"duplicates"`
	Parked         uint64 `json:"parked"`
	RecordsFetched uint64 `json:"records_fetched"`
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`
}

func statsView(s replication.Stats) statsJSON {
	return statsJSON{s.WritesSent, s.WritesApplied, s.Duplicates, s.Parked, s.RecordsFetched, s.BytesSent, s.BytesReceived}
}

type summaryJSON struct {
	Partners  int       `json:"partners"`
	Succeeded int       `json:"succeeded"`
	Failed    []string  `json:"failed"`
	Stats     statsJSON `json:"stats"`
	Millis    int64     `json:"millis"`
	// The arbiter's decisions on this device's writes, and the sync
	// errors received during the call (POST /v1/sync; syncround.go).
	Decisions  *decisionsJSON  `json:"decisions,omitempty"`
	SyncErrors []syncErrorJSON `json:"sync_errors,omitempty"`
}

func (a *Agent) runSync(ctx context.Context, rp *replica) summaryJSON {
	a.prog.mu.Lock()
	if a.prog.running == 0 {
		a.prog.started = time.Now()
		a.prog.stats = replication.Stats{}
	}
	a.prog.running++
	a.prog.mu.Unlock()
	start := time.Now()
	sum := rp.engine.SyncNow(ctx, func(s replication.Stats) {
		a.prog.mu.Lock()
		a.prog.stats = s
		a.prog.mu.Unlock()
	})
	a.prog.mu.Lock()
	a.prog.running--
	a.prog.mu.Unlock()
	result := "ok"
	if len(sum.Failed) > 0 {
		result = "failed"
	}
	a.metrics.syncRounds.WithLabelValues(result).Inc() // bytes: counted per session (metrics.session)
	failed := sum.Failed
	if failed == nil {
		failed = []string{}
	}
	return summaryJSON{Partners: sum.Partners, Succeeded: sum.Succeeded, Failed: failed, Stats: statsView(sum.Stats), Millis: time.Since(start).Milliseconds()}
}

func (a *Agent) syncNow(w http.ResponseWriter, r *http.Request) (any, error) {
	wait, err := decisionWait(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		rp.engine.ForceReconcile() // a sync asked for re-evaluates the offline profile too
		return a.syncRound(r.Context(), rp, wait), nil
	})
}

type connectivityBody struct {
	Online *bool `json:"online"`
}

func (a *Agent) connectivity(w http.ResponseWriter, r *http.Request) (any, error) {
	var body connectivityBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Online == nil {
		return nil, errf(http.StatusBadRequest, `body needs "online": true or false`)
	}
	return a.with(func(rp *replica) (any, error) {
		rp.setOnline(*body.Online)
		return map[string]bool{"online": *body.Online}, nil
	})
}

func (rp *replica) setOnline(on bool) {
	rp.engine.SetOnline(on)
	if rp.gossip != nil {
		rp.gossip.SetOnline(on)
	}
	rp.a.log.Info("connectivity", "online", on)
}

type peerJSON struct {
	Addr        string    `json:"addr"`
	Node        string    `json:"node"`
	Role        string    `json:"role"`
	LastSuccess string    `json:"last_success,omitempty"`
	LastAttempt string    `json:"last_attempt,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures"`
	NextTry     string    `json:"next_try,omitempty"`
	SkewMs      int64     `json:"skew_ms"`
	Last        statsJSON `json:"last_session"`
	APIAddr     string    `json:"api_addr,omitempty"`    // as the partner advertised it in the handshake
	GossipAddr  string    `json:"gossip_addr,omitempty"` // the same
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (a *Agent) status(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		st := map[string]any{}
		st["node"] = rp.node.String()
		st["role"] = a.cfg.Role
		st["cluster_id"] = a.cfg.ClusterID
		st["online"] = rp.engine.Online()
		st["api_addr"] = a.APIAddr()
		st["sync_addr"] = rp.syncLn.Addr().String()
		st["gossip_addr"] = rp.gossipAddr()
		st["hubs"] = nonNil(a.cfg.Hubs)
		st["uptime_s"] = int64(time.Since(a.started).Seconds())
		// Every node that synced with this one, per direction (peers.go;
		// GET /v1/peers adds pending writes and sync errors per peer).
		st["peers"] = rp.peerRows(false)
		// Per-table last sync: the last successful session, served or
		// dialed, that exchanged the table (the peer's scope listed it).
		tables, err := rp.store.Tables()
		if err != nil {
			return nil, err
		}
		tj := []map[string]string{}
		for _, t := range tables {
			if t == policyTable || t == errorTable || t == dupTable {
				continue // system tables
			}
			tj = append(tj, map[string]string{"table": t, "last_sync": timeStr(rp.book.tableSync(t)), "policy": string(rp.policyOf(t))})
		}
		st["tables"] = tj
		if rp.pendingOutboundMeans() {
			st["pending_outbound"] = rp.out.pending()
			st["pending_outbound_note"] = "local writes not yet known to be held by a hub: counted from the start of the last successful session with a hub; after a restart every earlier write counts until the first such session"
		}
		c := rp.counts()
		st["conflicts"] = c.conflicts
		st["sync_errors"] = c.syncErrors // rejected changes, not retried
		st["overridden"] = c.overridden  // values a policy overrode (lww, client-wins), not retried
		st["parked"] = c.parked
		st["policies"] = a.cfg.Policies
		st["policy_note"] = "a hub arbitrates client-wins and server-wins tables (unless --no-arbiter); sync errors are the changes it rejected (server-wins, permissions), overridden the values lww and client-wins kept out (logged, not alarms); conflicts list the concurrent candidates of a field on manual tables"
		st["feed_head"] = strconv.FormatUint(rp.store.FeedHead(), 10)
		st["encrypted_at_rest"] = rp.store.Encrypted()
		st["insecure"] = insecureSync(&a.cfg) // sync off loopback without mutual TLS (security.go)
		rp.draftStatus(st)                    // drafts.go
		rp.diskStatus(st)                     // compact.go
		a.prog.mu.Lock()
		st["sync"] = map[string]any{"running": a.prog.running > 0, "started": timeStr(a.prog.started), "progress": statsView(a.prog.stats)}
		a.prog.mu.Unlock()
		if rp.gossip != nil {
			alive := 0
			for _, m := range rp.gossip.Members() {
				if m.State.String() == "alive" {
					alive++
				}
			}
			st["gossip_members"] = alive
		}
		return st, nil
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// --- change feed ---

type changeJSON struct {
	Cursor string `json:"cursor"`
	Table  string `json:"table"`
	ID     string `json:"id"`
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
}

// readFeed returns up to limit changes after cursor, and the feed head.
func (a *Agent) readFeed(after uint64, limit int) ([]changeJSON, uint64, error) {
	rp, err := a.acquire()
	if err != nil {
		return nil, 0, err
	}
	defer a.mu.RUnlock()
	es, err := rp.store.Feed(after, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]changeJSON, 0, len(es))
	for _, e := range es {
		out = append(out, changeJSON{Cursor: strconv.FormatUint(e.Feed, 10), Table: e.Table, ID: e.ID, Origin: e.Origin.String(), Seq: e.Seq})
	}
	return out, rp.store.FeedHead(), nil
}

// changes serves the change feed: long-poll JSON, or server-sent events
// when the client accepts text/event-stream. Cursors are feed positions,
// durable across restarts (not across a reset, which starts a new feed).
func (a *Agent) changes(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	since := q.Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID")
	}
	var after uint64
	switch since {
	case "", "0":
	case "now":
		_, head, err := a.readFeed(0, 1)
		if err != nil {
			return nil, err
		}
		after = head
	default:
		var err error
		if after, err = strconv.ParseUint(since, 10, 64); err != nil {
			return nil, errf(http.StatusBadRequest, "since=%q: want a cursor from an earlier response, 0, or now", since)
		}
	}
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	timeout := defaultPollTimeout
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return nil, errf(http.StatusBadRequest, "timeout=%q: want a duration such as 10s", s)
		}
		timeout = min(d, maxPollTimeout)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return nil, a.streamChanges(w, r, after, limit)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		wake := a.feed.wait()
		cs, _, err := a.readFeed(after, limit)
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 || timeout == 0 {
			next := strconv.FormatUint(after, 10)
			if len(cs) > 0 {
				next = cs[len(cs)-1].Cursor
			}
			return map[string]any{"changes": cs, "next": next}, nil
		}
		select {
		case <-wake:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

func (a *Agent) streamChanges(w http.ResponseWriter, r *http.Request, after uint64, limit int) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return errf(http.StatusNotAcceptable, "streaming is not supported on this connection")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": replicad change feed after %d\n\n", after)
	fl.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		wake := a.feed.wait()
		cs, _, err := a.readFeed(after, limit)
		if err != nil && !errors.Is(err, errResetting) {
			fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
			fl.Flush()
			return nil
		}
		for _, c := range cs {
			b, _ := json.Marshal(c)
			fmt.Fprintf(w, "id: %s\nevent: change\ndata: %s\n\n", c.Cursor, b)
			after, _ = strconv.ParseUint(c.Cursor, 10, 64)
		}
		if len(cs) > 0 {
			fl.Flush()
			if len(cs) == limit {
				continue
			}
		}
		select {
		case <-wake:
			if a.feed.isClosed() {
				return nil
			}
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-r.Context().Done():
			return nil
		}
	}
}

func (n *notifier) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// --- reset ---

type resetBody struct {
	Confirm bool `json:"confirm"`
}

// reset clears the local replica and resyncs it: the store is closed and
// moved aside (<data-dir>/reset-<unix-ms>/), a fresh store with a new node
// id is opened, and a sync round runs. Writes not yet pushed are in the
// moved-aside store only.
func (a *Agent) reset(w http.ResponseWriter, r *http.Request) (any, error) {
	var body resetBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if !body.Confirm {
		return nil, errf(http.StatusBadRequest, `reset needs {"confirm": true}: it discards this replica's store (moved aside) and resyncs it`)
	}
	a.mu.Lock()
	old := a.rep
	a.rep = nil
	var moved string
	err := func() error {
		if old != nil {
			old.close()
		}
		moved = fmt.Sprintf("%s/reset-%d", a.cfg.DataDir, time.Now().UnixMilli())
		if err := os.Rename(a.storeDir(), moved); err != nil {
			return fmt.Errorf("moving the store aside: %w", err)
		}
		rp, err := a.openReplica()
		if err != nil {
			return err
		}
		rp.start()
		a.rep = rp
		return nil
	}()
	a.mu.Unlock()
	if err != nil {
		a.log.Error("reset failed; restart the agent", "error", err)
		return nil, err
	}
	a.feed.notify()
	a.log.Info("replica reset", "moved_to", moved)
	return a.with(func(rp *replica) (any, error) {
		sum := a.runSync(r.Context(), rp)
		return map[string]any{"node": rp.node.String(), "moved_to": moved, "sync": sum}, nil
	})
}
