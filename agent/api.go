package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/profiles"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// Limits of the API.
const (
	defaultPageLimit = httpapi.DefaultPageLimit
	maxPageLimit     = httpapi.MaxPageLimit
	maxPollTimeout   = httpapi.MaxPollTimeout
	maxConflictScan  = 100000 // conflict index entries examined by GET /v1/conflicts
)

// apiError answers an API error (httpapi.Router's onError): a client
// error is counted, any other logged.
func (a *Agent) apiError(code int, err error) {
	if code >= 400 && code < 500 {
		a.metrics.Rejected(code)
	} else {
		a.log.Error("api request failed", "error", err)
	}
}

// writeError answers err as a JSON error.
func (a *Agent) writeError(w http.ResponseWriter, err error) { httpapi.WriteError(w, err, a.apiError) }

var errResetting = httpapi.ErrResetting

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
	rt := httpapi.NewRouter(a.apiError)
	rt.Handle("PUT /v1/tables/{table}/records/{id}", a.putRecordModes)
	rt.Handle("GET /v1/tables/{table}/records/{id}", a.getRecordModes)
	rt.Handle("DELETE /v1/tables/{table}/records/{id}", a.deleteRecordModes)
	rt.Handle("GET /v1/tables/{table}/records", a.listRecordsModes) // ?draft, ?online: drafts.go, onlinereads.go
	a.drafts.Routes(rt)                                             // internal/ext/drafts
	rt.Handle("GET /v1/conflicts", a.listConflicts)
	rt.Handle("POST /v1/conflicts/{table}/{id}/{field}", a.resolveConflict)
	rt.Handle("GET /v1/sync-errors", a.listSyncErrors)
	rt.Handle("POST /v1/sync-errors/{eid}/retry", a.retrySyncError)
	rt.Handle("POST /v1/sync", a.syncNow)
	rt.Handle("POST /v1/connectivity", a.connectivity)
	rt.Handle("GET /v1/status", a.status)
	rt.Handle("GET /v1/peers", a.listPeers) // peers.go
	rt.Handle("GET /v1/changes", httpapi.Changes(changeFeed{a}))
	rt.Handle("POST /v1/reset", a.reset)
	rt.Handle("POST /v1/compact", a.compact) // compact.go
	rt.Handle("GET /v1/parked", a.listParked)
	profiles.NewAPI(profilesHost{a}).Routes(rt) // internal/ext/profiles
	rt.Handle("POST /v1/parked/{origin}/{seq}/release", a.releaseParked)
	a.debugRoutes(rt) // testing only: agent/debug.go
	if a.cfg.Pprof {  // REPLICAD_PPROF=1
		a.log.Info("profiling endpoints enabled", "env", config.PprofEnv, "path", "/debug/pprof/")
		httpapi.Pprof(rt)
	}
	// Duplicates and workflows: agent/online_api.go.
	a.onlineRoutes(rt)
	rt.HandleHTTP("GET /metrics", a.metrics.Handler())
	httpapi.StatusPage(rt)
	a.routeOf = rt.Pattern // the metrics' route label
	// No catch-all pattern: a known path under a wrong method is a 405
	// with Allow, anything else a 404 (httpapi/routing.go).
	return rt.Handler(a.cfg.MaxBodyBytes)
}

// decodeBody decodes one JSON object into v, refusing unknown fields and
// trailing data.
func decodeBody(r *http.Request, v any) error { return httpapi.DecodeBody(r, v) }

// --- records ---

// jsonValue is a field value as JSON (node.JSONValue).
func jsonValue(v crdt.Value) json.RawMessage { return node.JSONValue(v) }

// existsField names, in conflicts, a delete concurrent with an update of
// the record (node.ExistsField).
const existsField = node.ExistsField

// recordView is table/id as the API shows it (node.Node.View).
func (r *replica) recordView(table, id string, rec *crdt.Record) api.Record {
	return r.n.View(table, id, rec)
}

// existing returns a record that exists here, or a 404 saying why not.
func (rp *replica) existing(table, id string) (*crdt.Record, error) {
	return httpapi.Existing(rp.store, table, id)
}

// records serves the record routes (internal/httpapi).
func (a *Agent) records() httpapi.Records { return httpapi.Records{Core: coreHost{a}} }

// names returns the table and record id of r's path (httpapi.Records.Names;
// the system tables' guard needs no agent).
func names(r *http.Request) (table, id string, err error) {
	return httpapi.Records{Core: coreHost{}}.Names(r)
}

// --- conflicts ---

// conflicts lists the fields with more than one live candidate that
// their table's policy shows as conflicts (manual), from the store's
// conflict index (records with concurrent candidates; at most
// maxConflictScan of them examined), so that its cost follows the
// conflicts, not the records.
func (rp *replica) conflicts() ([]api.Conflict, error) {
	out := []api.Conflict{}
	afterT, afterID, seen := "", "", 0
	for seen < maxConflictScan {
		refs, err := rp.store.ConflictedRecords(afterT, afterID, 500)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			seen++
			t := ref.Table
			k := rp.n.PolicyOf(t)
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
				cj := api.Conflict{Kind: "field", Table: t, ID: ref.ID, Field: name, Candidates: node.Candidates(c.Candidates)}
				if c.Field != "" {
					cj.Base = rp.n.BaseOf(t, ref.ID, c.Field)
				}
				out = append(out, cj)
			}
		}
		if len(refs) < 500 {
			break
		}
		afterT, afterID = refs[len(refs)-1].Table, refs[len(refs)-1].ID
	}
	dups, err := dedupe.Conflicts(rp.store)
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
			case node.SyncErrorKind(e.Kind, e.Policy) == node.KindOverridden:
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
	var body api.ResolveRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if (body.Pick == nil) == (body.Value == nil) {
		return nil, httpapi.Errorf(http.StatusBadRequest, `give exactly one of "pick" (a candidate's index) or "value" (a JSON value)`)
	}
	var val crdt.Value
	if body.Value != nil {
		if val, err = httpapi.ExactValue(body.Value); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "value: %v", err)
		}
	}
	return a.with(func(rp *replica) (any, error) {
		rec, err := rp.store.Get(table, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err != nil || rp.n.PolicyOf(table) != policy.Manual {
			return nil, httpapi.Errorf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		if field == existsField {
			// A delete concurrent with an update: pick one.
			if !rec.ExistConflict() || body.Pick == nil {
				return nil, httpapi.Errorf(http.StatusNotFound, "no delete/update conflict on %s/%s (resolve it with a pick)", table, id)
			}
			if *body.Pick < 0 || *body.Pick >= len(rec.Exist) {
				return nil, httpapi.Errorf(http.StatusBadRequest, "pick %d: the record has candidates 0 to %d", *body.Pick, len(rec.Exist)-1)
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
		if !rec.Exists() || !slices.Contains(rec.Conflicted(), field) {
			return nil, httpapi.Errorf(http.StatusNotFound, "no conflict on %s/%s field %q", table, id, field)
		}
		del := false
		if body.Pick != nil {
			cands := rec.Candidates(field)
			if *body.Pick < 0 || *body.Pick >= len(cands) {
				return nil, httpapi.Errorf(http.StatusBadRequest, "pick %d: the field has candidates 0 to %d", *body.Pick, len(cands)-1)
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

// --- reset ---

// reset clears the local replica and resyncs it: the store is closed and
// moved aside (<data-dir>/reset-<unix-ms>/), a fresh store with a new node
// id is opened, and a sync round runs. Writes not yet pushed are in the
// moved-aside store only.
func (a *Agent) reset(w http.ResponseWriter, r *http.Request) (any, error) {
	var body api.ResetRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if !body.Confirm {
		return nil, httpapi.Errorf(http.StatusBadRequest, `reset needs {"confirm": true}: it discards this replica's store (moved aside) and resyncs it`)
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
	a.feed.Notify()
	a.log.Info("replica reset", "moved_to", moved)
	return a.with(func(rp *replica) (any, error) {
		sum := a.runSync(r.Context(), rp)
		return map[string]any{"node": rp.node.String(), "moved_to": moved, "sync": sum}, nil
	})
}
