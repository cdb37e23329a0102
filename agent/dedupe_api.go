package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

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

// duplicates lists the flags of dedupe.Table here (all, or only open ones).
func (rp *replica) duplicates(all bool) ([]api.Duplicate, error) {
	out := []api.Duplicate{}
	after := ""
	for {
		page, next, err := rp.store.Scan(dedupe.Table, after, 500)
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
func (rp *replica) duplicateConflicts() ([]api.Conflict, error) {
	fs, err := rp.duplicates(false)
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
func (rp *replica) resolveDuplicate(table, id string, body api.DuplicateRequest) (map[string]any, error) {
	frec, err := rp.store.Get(dedupe.Table, dedupe.FlagID(table, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var f api.Duplicate
	ok := false
	if err == nil {
		f, ok = flagView(dedupe.FlagID(table, id), frec)
	}
	if !ok || f.Status != "open" || f.Table != table || f.ID != id {
		return nil, httpapi.Errorf(http.StatusNotFound, "%v on %s/%s", errNoFlag, table, id)
	}
	switch body.Action {
	case "keep", "discard", "merge":
	default:
		return nil, httpapi.Errorf(http.StatusBadRequest, `action %q: want "keep", "merge" or "discard"`, body.Action)
	}
	with := body.With
	if with == "" && len(f.With) == 1 {
		with = f.With[0]
	}
	if with != "" && !slices.Contains(f.With, with) {
		return nil, httpapi.Errorf(http.StatusBadRequest, "%s/%s was flagged as a duplicate of %s, not of %q", table, id, strings.Join(f.With, ", "), with)
	}
	prefer := body.Prefer
	if prefer == "" {
		prefer = "existing"
	}
	if prefer != "existing" && prefer != "new" {
		return nil, httpapi.Errorf(http.StatusBadRequest, `prefer %q: want "existing" or "new"`, body.Prefer)
	}
	out := map[string]any{}
	status := ""
	switch body.Action {
	case "keep":
		status = "kept"
	case "discard":
		status = "discarded"
		if rec, err := rp.store.Get(table, id); err == nil && rec.Exists() {
			if _, err := rp.localWrite(table, id, nil, true); err != nil {
				return nil, err
			}
		}
	case "merge":
		status = "merged"
		if with == "" {
			return nil, httpapi.Errorf(http.StatusBadRequest, `merge needs "with": one of %s`, strings.Join(f.With, ", "))
		}
		surv, err := rp.existing(table, with)
		if err != nil {
			return nil, err
		}
		dup, err := rp.existing(table, id)
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
			res, err := rp.localWrite(table, with, fields, false)
			if err != nil {
				return nil, err
			}
			rec = res.Record
		}
		if _, err := rp.localWrite(table, id, nil, true); err != nil {
			return nil, err
		}
		out["record"] = rp.recordView(table, with, rec)
	}
	res := map[string]any{"action": body.Action, "prefer": prefer, "node": rp.node.String(), "time": time.Now().UTC().Format(time.RFC3339Nano)}
	if with != "" {
		res["with"] = with
	}
	fields, err := node.JSONFields(map[string]any{"status": status, "resolution": res})
	if err != nil {
		return nil, err
	}
	wr, err := rp.localWrite(dedupe.Table, dedupe.FlagID(table, id), fields, false)
	if err != nil {
		return nil, err
	}
	nf, _ := flagView(dedupe.FlagID(table, id), wr.Record)
	out["duplicate"] = nf
	return out, nil
}
