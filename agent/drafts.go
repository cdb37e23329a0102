package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/store"
)

// Drafts (issue 9): field values written with ?draft=true are kept on
// this device only (store.PutDraft: no stamp, log, feed or holdings, so no
// sync session, gossip push or feed reader ever sees them), listed,
// published by a commit (an ordinary local write of the draft's fields,
// through localWrite, whose batch removes the draft) or discarded.
//
// Reads with ?draft=true show the record with the draft's values laid
// over its visible fields, and the draft itself under "draft"; a record
// that exists only as a draft shows the draft's values alone. Plain reads,
// lists, the change feed and sync never show drafts.

// boolParam parses the query flag name: absent means false, present
// without a value ("?draft") true, else strconv.ParseBool.
func boolParam(r *http.Request, name string) (bool, error) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		return false, nil
	}
	s := q.Get(name)
	if s == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, httpapi.Errorf(http.StatusBadRequest, "%s=%q: want true or false", name, s)
	}
	return b, nil
}

// readModes returns the ?draft and ?online flags of a request, refusing
// the ones the call does not take.
func readModes(r *http.Request, draftOK, onlineOK bool) (draft, online bool, err error) {
	if draft, err = boolParam(r, "draft"); err != nil {
		return
	}
	if online, err = boolParam(r, "online"); err != nil {
		return
	}
	switch {
	case draft && !draftOK:
		err = httpapi.Errorf(http.StatusBadRequest, "draft=true applies to reading and writing one record (GET and PUT /v1/tables/{table}/records/{id}); list drafts with GET /v1/drafts, discard one with DELETE /v1/drafts/{table}/{id}")
	case online && !onlineOK:
		err = httpapi.Errorf(http.StatusBadRequest, "online=true applies to reads (GET) only: writes are always local")
	case draft && online:
		err = httpapi.Errorf(http.StatusBadRequest, "draft=true and online=true do not go together: drafts are on this device, online reads on the hub")
	}
	return
}

// The record routes, with their ?draft and ?online (onlinereads.go)
// modes.

func (a *Agent) putRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, _, err := readModes(r, true, false)
	if err != nil {
		return nil, err
	}
	if draft {
		return a.putDraft(w, r)
	}
	return a.putRecord(w, r)
}

func (a *Agent) getRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, online, err := readModes(r, true, true)
	switch {
	case err != nil:
		return nil, err
	case draft:
		return a.getDrafted(w, r)
	case online:
		return a.getRecordOnline(w, r)
	}
	return a.getRecord(w, r)
}

func (a *Agent) deleteRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, _, err := readModes(r, false, false); err != nil {
		return nil, err
	}
	return a.deleteRecord(w, r)
}

func (a *Agent) listRecordsModes(w http.ResponseWriter, r *http.Request) (any, error) {
	_, online, err := readModes(r, false, true)
	if err != nil {
		return nil, err
	}
	if online {
		return a.listRecordsOnline(w, r)
	}
	return a.listRecords(w, r)
}

// draftRoutes adds the /v1/drafts calls.
func (a *Agent) draftRoutes(rt *httpapi.Router) {
	rt.Handle("GET /v1/drafts", a.listDrafts)
	rt.Handle("GET /v1/drafts/{table}/{id}", a.getDraft)
	rt.Handle("POST /v1/drafts/{table}/{id}/commit", a.commitDraft)
	rt.Handle("DELETE /v1/drafts/{table}/{id}", a.discardDraft)
}

// draftJSON is a draft in API answers.
type draftJSON = api.Draft

// draftedJSON is a record with its draft laid over it.
type draftedJSON = api.DraftedRecord

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

func (rp *replica) draftView(d *store.Draft) draftJSON {
	out := draftJSON{Table: d.Table, ID: d.ID, Fields: map[string]json.RawMessage{}, Created: msTime(d.Created), Updated: msTime(d.Updated), Rev: d.Rev}
	for name, v := range d.Fields {
		out.Fields[name] = jsonValue(crdt.Value(v))
	}
	rec, err := rp.store.Get(d.Table, d.ID)
	if err == nil {
		out.RecordExists = rec.Exists()
		out.Changed = !rec.Context().Equal(d.BaseVV())
	} else {
		out.Changed = len(d.Base) > 0
	}
	return out
}

// drafted returns table/id with its draft laid over it, or a 404 when
// there is neither a record nor a draft (or the record is outside this
// device's scope).
func (rp *replica) drafted(table, id string) (*draftedJSON, error) {
	d, derr := rp.store.GetDraft(table, id)
	if derr != nil && !errors.Is(derr, store.ErrNotFound) {
		return nil, derr
	}
	rec, err := rp.existing(table, id)
	var out draftedJSON
	switch {
	case err == nil:
		out.Record = rp.recordView(table, id, rec)
	case d != nil && isAPINotFound(err) && !rp.store.Hidden(table, id):
		// Only a draft: its values alone.
		out.Record = recordJSON{Table: table, ID: id, Fields: map[string]json.RawMessage{}, Conflicts: map[string][]candidateJSON{}}
	default:
		return nil, err
	}
	if d != nil {
		dv := rp.draftView(d)
		for name, v := range dv.Fields {
			out.Fields[name] = v
		}
		out.Draft = &dv
	}
	return &out, nil
}

// draftStatus adds to the status the number of drafts and, on a device,
// the hub API online reads go to.
func (rp *replica) draftStatus(st map[string]any) {
	n, err := rp.store.CountDrafts()
	if err != nil {
		rp.a.log.Warn("counting drafts", "error", err)
	}
	st["drafts"] = n
	if rp.a.cfg.Role != "hub" {
		if base := rp.a.hubAPIBase(rp); base != "" {
			st["hub_api"] = base
		}
	}
}

func isAPINotFound(err error) bool {
	var ae *httpapi.Error
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

func (a *Agent) getDrafted(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) { return rp.drafted(table, id) })
}

// putDraft sets fields in the record's draft (PUT ...?draft=true, the
// body of a PUT). Fields already in the draft and not named keep their
// values.
func (a *Agent) putDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	var body putBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if len(body.Fields) == 0 {
		return nil, httpapi.Errorf(http.StatusBadRequest, `a draft needs "fields": an object of at least one field name to a JSON value`)
	}
	fields, err := body.values()
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		var base crdt.VV
		rec, err := rp.store.Get(table, id)
		switch {
		case errors.Is(err, store.ErrOutOfScope):
			return nil, httpapi.Errorf(http.StatusNotFound, "record %s/%s is not in this device's offline profile: a draft could not be committed", table, id)
		case err == nil:
			base = rec.Context()
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		if _, err := rp.store.PutDraft(table, id, fields, time.Now().UnixMilli(), base); err != nil {
			return nil, err
		}
		return rp.drafted(table, id)
	})
}

func (a *Agent) getDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		d, err := rp.store.GetDraft(table, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, httpapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
		}
		if err != nil {
			return nil, err
		}
		return rp.draftView(d), nil
	})
}

// listDrafts: GET /v1/drafts?table=T&limit=N&after=TABLE/ID.
func (a *Agent) listDrafts(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	table := q.Get("table")
	if table != "" && !store.ValidTable(table) {
		return nil, httpapi.Errorf(http.StatusBadRequest, "table=%q: 1-%d characters from [A-Za-z0-9_.-]", table, store.MaxTableLen)
	}
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	var afterTable, afterID string
	if s := q.Get("after"); s != "" {
		var ok bool
		afterTable, afterID, ok = strings.Cut(s, "/")
		if !ok || !store.ValidTable(afterTable) || !store.ValidID(afterID) {
			return nil, httpapi.Errorf(http.StatusBadRequest, "after=%q: want TABLE/ID (the next of an earlier answer)", s)
		}
	}
	return a.with(func(rp *replica) (any, error) {
		ds, err := rp.store.ListDrafts(table, afterTable, afterID, limit+1)
		if err != nil {
			return nil, err
		}
		next := ""
		if len(ds) > limit {
			ds = ds[:limit]
			next = ds[limit-1].Table + "/" + ds[limit-1].ID
		}
		out := make([]draftJSON, 0, len(ds))
		for _, d := range ds {
			out = append(out, rp.draftView(d))
		}
		return map[string]any{"drafts": out, "next": next}, nil
	})
}

// commitDraft publishes a draft: an ordinary local write of its fields
// (replicated, judged by the table's policy like any other), in whose
// batch the draft is removed, so it is published once, whole.
func (a *Agent) commitDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		for attempt := 0; ; attempt++ {
			d, err := rp.store.GetDraft(table, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil, httpapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
			}
			if err != nil {
				return nil, err
			}
			res, err := rp.localWriteWith(table, id, d.FieldValues(), false, func(b *store.Batch) { b.TakeDraft(table, id, d.Rev) })
			switch {
			case errors.Is(err, store.ErrDraftChanged) && attempt < 3:
				continue // changed (or committed) meanwhile: read it again
			case errors.Is(err, store.ErrDraftChanged):
				return nil, httpapi.Errorf(http.StatusConflict, "the draft of %s/%s keeps changing: commit it again", table, id)
			case errors.Is(err, store.ErrOutOfScope):
				return nil, httpapi.Errorf(http.StatusConflict, "record %s/%s left this device's offline profile: the draft is kept, discard it with DELETE /v1/drafts/%s/%s", table, id, table, id)
			case err != nil:
				return nil, err
			}
			return rp.recordView(table, id, res.Record), nil
		}
	})
}

func (a *Agent) discardDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		d, err := rp.store.DeleteDraft(table, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, httpapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"discarded": rp.draftView(d)}, nil
	})
}
