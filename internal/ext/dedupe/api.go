package dedupe

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// APIHost is what the duplicates' API needs of the agent: the current
// replica and the public API's request parsing.
type APIHost = extapi.RecordsHost

// APIReplica is the replica the duplicates' API reads and writes.
type APIReplica = extapi.Records

// API is the duplicates' endpoints.
type API struct{ h APIHost }

// NewAPI returns the duplicates' endpoints of h.
func NewAPI(h APIHost) *API { return &API{h: h} }

// Routes adds GET /v1/duplicates and POST /v1/duplicates/{table}/{id}.
func (a *API) Routes(rt extapi.Registrar) {
	rt.Handle("GET /v1/duplicates", a.list)
	rt.Handle("POST /v1/duplicates/{table}/{id}", a.resolve)
}

// list: the open flags (?all=true: the resolved ones too).
func (a *API) list(w http.ResponseWriter, r *http.Request) (any, error) {
	all := false
	if s := r.URL.Query().Get("all"); s != "" {
		var err error
		if all, err = strconv.ParseBool(s); err != nil {
			return nil, extapi.Errorf(http.StatusBadRequest, "all=%q: want true or false", s)
		}
	}
	return a.h.With(func(rp APIReplica) (any, error) {
		fs, err := List(rp.Store(), all)
		if err != nil {
			return nil, err
		}
		return map[string]any{"duplicates": fs}, nil
	})
}

func (a *API) resolve(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	var body api.DuplicateRequest
	if err := a.h.DecodeBody(r, &body); err != nil {
		return nil, err
	}
	return a.h.With(func(rp APIReplica) (any, error) {
		return resolve(rp, table, id, body)
	})
}

// --- the flags as every replica sees them ---

func decodeField(rec *crdt.Record, name string, dst any) bool {
	v, ok := rec.Get(name)
	if !ok {
		return false
	}
	b, err := v.JSON()
	return err == nil && json.Unmarshal(b, dst) == nil
}

func flagView(flagID string, rec *crdt.Record) (api.Duplicate, bool) {
	f := api.Duplicate{Kind: "duplicate", Flag: flagID, Candidates: []api.Candidate{}, With: []string{}, Keys: map[string]json.RawMessage{}}
	if !rec.Exists() || !decodeField(rec, "table", &f.Table) || !decodeField(rec, "id", &f.ID) {
		return f, false
	}
	decodeField(rec, "with", &f.With)
	decodeField(rec, "keys", &f.Keys)
	decodeField(rec, "status", &f.Status)
	var ms int64
	if decodeField(rec, "detected", &ms) {
		f.Detected = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	}
	if v, ok := rec.Get("resolution"); ok {
		if b, err := v.JSON(); err == nil {
			f.Resolution = b
		}
	}
	return f, true
}

// duplicates lists the flags of Table here (all, or only open ones).
// Open returns the number of open flags in st.
func Open(st *store.Store) (int, error) {
	ds, err := List(st, false)
	return len(ds), err
}

// List lists the flags of Table in st (all, or only the open ones).
func List(st *store.Store, all bool) ([]api.Duplicate, error) {
	out := []api.Duplicate{}
	after := ""
	for {
		page, next, err := st.Scan(Table, after, 500)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			f, ok := flagView(e.ID, e.Record)
			if ok && (all || f.Status == "open") {
				out = append(out, f)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Table < out[j].Table || out[i].Table == out[j].Table && out[i].ID < out[j].ID
	})
	return out, nil
}

// duplicateConflicts is the open flags in the shape of GET /v1/conflicts.
// Conflicts is the open flags of st in the shape of GET /v1/conflicts.
func Conflicts(st *store.Store) ([]api.Conflict, error) {
	fs, err := List(st, false)
	if err != nil {
		return nil, err
	}
	out := make([]api.Conflict, 0, len(fs))
	for _, f := range fs {
		out = append(out, api.Conflict{Kind: "duplicate", Table: f.Table, ID: f.ID, Field: "", Candidates: []api.Candidate{}, With: f.With, Keys: f.Keys})
	}
	return out, nil
}

var errNoFlag = errors.New("no open duplicate flag")

// resolveDuplicate carries out a resolution as ordinary local writes
// (they replicate like any change, and work offline too):
//
//   - keep: both records stay; the flag is closed.
//   - discard: the flagged (new) record is deleted; the flag is closed.
//   - merge: the record named by "with" (the existing one) survives. It
//     receives every field of the flagged record it has no value for; a
//     field both have keeps the survivor's value, or the flagged
//     record's with "prefer": "new". Then the flagged record is deleted
//     and the flag closed. The steps are separate writes: after a crash
//     between them the flag is still open and the merge can be repeated.
func resolve(rp APIReplica, table, id string, body api.DuplicateRequest) (map[string]any, error) {
	frec, err := rp.Store().Get(Table, FlagID(table, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var f api.Duplicate
	ok := false
	if err == nil {
		f, ok = flagView(FlagID(table, id), frec)
	}
	if !ok || f.Status != "open" || f.Table != table || f.ID != id {
		return nil, extapi.Errorf(http.StatusNotFound, "%v on %s/%s", errNoFlag, table, id)
	}
	switch body.Action {
	case "keep", "discard", "merge":
	default:
		return nil, extapi.Errorf(http.StatusBadRequest, `action %q: want "keep", "merge" or "discard"`, body.Action)
	}
	with := body.With
	if with == "" && len(f.With) == 1 {
		with = f.With[0]
	}
	if with != "" && !slices.Contains(f.With, with) {
		return nil, extapi.Errorf(http.StatusBadRequest, "%s/%s was flagged as a duplicate of %s, not of %q", table, id, strings.Join(f.With, ", "), with)
	}
	prefer := body.Prefer
	if prefer == "" {
		prefer = "existing"
	}
	if prefer != "existing" && prefer != "new" {
		return nil, extapi.Errorf(http.StatusBadRequest, `prefer %q: want "existing" or "new"`, body.Prefer)
	}
	out := map[string]any{}
	status := ""
	switch body.Action {
	case "keep":
		status = "kept"
	case "discard":
		status = "discarded"
		if rec, err := rp.Store().Get(table, id); err == nil && rec.Exists() {
			if _, err := rp.Write(table, id, nil, true, nil); err != nil {
				return nil, err
			}
		}
	case "merge":
		status = "merged"
		if with == "" {
			return nil, extapi.Errorf(http.StatusBadRequest, `merge needs "with": one of %s`, strings.Join(f.With, ", "))
		}
		surv, err := rp.Existing(table, with)
		if err != nil {
			return nil, err
		}
		dup, err := rp.Existing(table, id)
		if err != nil {
			return nil, err
		}
		var fields []crdt.FieldValue
		dup.Visible(func(name string, v crdt.Value) {
			cur, has := surv.Get(name)
			if !has || prefer == "new" && !reflect.DeepEqual([]byte(cur), []byte(v)) {
				fields = append(fields, crdt.FieldValue{Name: name, Value: v})
			}
		})
		rec := surv
		if len(fields) > 0 {
			res, err := rp.Write(table, with, fields, false, nil)
			if err != nil {
				return nil, err
			}
			rec = res.Record
		}
		if _, err := rp.Write(table, id, nil, true, nil); err != nil {
			return nil, err
		}
		out["record"] = rp.RecordView(table, with, rec)
	}
	res := map[string]any{"action": body.Action, "prefer": prefer, "node": rp.ID().String(), "time": time.Now().UTC().Format(time.RFC3339Nano)}
	if with != "" {
		res["with"] = with
	}
	fields, err := node.JSONFields(map[string]any{"status": status, "resolution": res})
	if err != nil {
		return nil, err
	}
	wr, err := rp.Write(Table, FlagID(table, id), fields, false, nil)
	if err != nil {
		return nil, err
	}
	nf, _ := flagView(FlagID(table, id), wr.Record)
	out["duplicate"] = nf
	return out, nil
}
