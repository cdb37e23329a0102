package drafts

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Host is what the drafts need of the agent: the current replica and the
// public API's request parsing.
type Host = extapi.RecordsHost

// Replica is the replica the drafts live in.
type Replica = extapi.Records

// API is the drafts' endpoints.
type API struct{ h Host }

// New returns the drafts' endpoints of h.
func New(h Host) *API { return &API{h: h} }

// Routes adds the /v1/drafts calls (the ?draft=true reads and writes of
// a record are the record routes': GetDrafted, PutDraft).
func (a *API) Routes(rt extapi.Registrar) {
	rt.Handle("GET /v1/drafts", a.listDrafts)
	rt.Handle("GET /v1/drafts/{table}/{id}", a.getDraft)
	rt.Handle("POST /v1/drafts/{table}/{id}/commit", a.commitDraft)
	rt.Handle("DELETE /v1/drafts/{table}/{id}", a.discardDraft)
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// draftJSON is a draft in API answers.
type draftJSON = api.Draft

// draftedJSON is a record with its draft laid over it.
type draftedJSON = api.DraftedRecord

func draftView(rp Replica, d *store.Draft) draftJSON {
	out := draftJSON{Table: d.Table, ID: d.ID, Fields: map[string]json.RawMessage{}, Created: msTime(d.Created), Updated: msTime(d.Updated), Rev: d.Rev}
	for name, v := range d.Fields {
		out.Fields[name] = node.JSONValue(crdt.Value(v))
	}
	rec, err := rp.Store().Get(d.Table, d.ID)
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
func drafted(rp Replica, table, id string) (*draftedJSON, error) {
	d, derr := rp.Store().GetDraft(table, id)
	if derr != nil && !errors.Is(derr, store.ErrNotFound) {
		return nil, derr
	}
	rec, err := rp.Existing(table, id)
	var out draftedJSON
	switch {
	case err == nil:
		out.Record = rp.RecordView(table, id, rec)
	case d != nil && isNotFound(err) && !rp.Store().Hidden(table, id):
		// Only a draft: its values alone.
		out.Record = api.Record{Table: table, ID: id, Fields: map[string]json.RawMessage{}, Conflicts: map[string][]api.Candidate{}}
	default:
		return nil, err
	}
	if d != nil {
		dv := draftView(rp, d)
		for name, v := range dv.Fields {
			out.Fields[name] = v
		}
		out.Draft = &dv
	}
	return &out, nil
}

func isNotFound(err error) bool {
	var se interface{ Status() int }
	return errors.As(err, &se) && se.Status() == http.StatusNotFound
}

// GetDrafted answers GET .../records/{id}?draft=true: the record with its
// draft laid over it.
func (a *API) GetDrafted(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) { return drafted(rp, table, id) })
}

// PutDraft sets fields in the record's draft (PUT ...?draft=true, the
// body of a PUT). Fields already in the draft and not named keep their
// values.
func (a *API) PutDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	fields, _, err := a.h.PutFields(r, func(n int) error {
		if n == 0 {
			return extapi.Errorf(http.StatusBadRequest, `a draft needs "fields": an object of at least one field name to a JSON value`)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		var base crdt.VV
		rec, err := rp.Store().Get(table, id)
		switch {
		case errors.Is(err, store.ErrOutOfScope):
			return nil, extapi.Errorf(http.StatusNotFound, "record %s/%s is not in this device's offline profile: a draft could not be committed", table, id)
		case err == nil:
			base = rec.Context()
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		if _, err := rp.Store().PutDraft(table, id, fields, time.Now().UnixMilli(), base); err != nil {
			return nil, err
		}
		return drafted(rp, table, id)
	})
}

func (a *API) getDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		d, err := rp.Store().GetDraft(table, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, extapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
		}
		if err != nil {
			return nil, err
		}
		return draftView(rp, d), nil
	})
}

// listDrafts: GET /v1/drafts?table=T&limit=N&after=TABLE/ID.
func (a *API) listDrafts(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	table := q.Get("table")
	if table != "" && !store.ValidTable(table) {
		return nil, extapi.Errorf(http.StatusBadRequest, "table=%q: 1-%d characters from [A-Za-z0-9_.-]", table, store.MaxTableLen)
	}
	limit, err := a.h.PageLimit(r)
	if err != nil {
		return nil, err
	}
	var afterTable, afterID string
	if s := q.Get("after"); s != "" {
		var ok bool
		afterTable, afterID, ok = strings.Cut(s, "/")
		if !ok || !store.ValidTable(afterTable) || !store.ValidID(afterID) {
			return nil, extapi.Errorf(http.StatusBadRequest, "after=%q: want TABLE/ID (the next of an earlier answer)", s)
		}
	}
	return a.h.With(func(rp Replica) (any, error) {
		ds, err := rp.Store().ListDrafts(table, afterTable, afterID, limit+1)
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
			out = append(out, draftView(rp, d))
		}
		return map[string]any{"drafts": out, "next": next}, nil
	})
}

// commitDraft publishes a draft: an ordinary local write of its fields
// (replicated, judged by the table's policy like any other), in whose
// batch the draft is removed, so it is published once, whole.
func (a *API) commitDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		for attempt := 0; ; attempt++ {
			d, err := rp.Store().GetDraft(table, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil, extapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
			}
			if err != nil {
				return nil, err
			}
			res, err := rp.Write(table, id, d.FieldValues(), false, func(b *store.Batch, _ *store.WriteResult) error { b.TakeDraft(table, id, d.Rev); return b.Err() })
			switch {
			case errors.Is(err, store.ErrDraftChanged) && attempt < 3:
				continue // changed (or committed) meanwhile: read it again
			case errors.Is(err, store.ErrDraftChanged):
				return nil, extapi.Errorf(http.StatusConflict, "the draft of %s/%s keeps changing: commit it again", table, id)
			case errors.Is(err, store.ErrOutOfScope):
				return nil, extapi.Errorf(http.StatusConflict, "record %s/%s left this device's offline profile: the draft is kept, discard it with DELETE /v1/drafts/%s/%s", table, id, table, id)
			case err != nil:
				return nil, err
			}
			return rp.RecordView(table, id, res.Record), nil
		}
	})
}

func (a *API) discardDraft(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		d, err := rp.Store().DeleteDraft(table, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, extapi.Errorf(http.StatusNotFound, "no draft of %s/%s", table, id)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"discarded": draftView(rp, d)}, nil
	})
}
