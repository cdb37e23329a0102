package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// Duplicate detection (issue 9, "work that only runs online"). A table
// may declare key fields (config `table "T" { keys = [...] }`, or --keys).
// The arbitrating hub files every live record of such a table that has a
// value (not null) for every key field under a digest of those values,
// last-writer-wins, in the store's key index (store/dupindex.go); the
// index changes in the batch of the write that changes the record (remote
// writes: the node's apply hooks; every local write, the arbiter's
// decisions and the permission write-backs included: the node's write
// pipeline), so it never disagrees with the records after a crash.
//
// A record is checked when it is created and whenever its key values
// change (Dynamics checks on create and update): if other live records
// are filed under its new digest (their key values are equal, value for
// value), it is a suspected duplicate of them. Nothing is merged: the
// hub records a pending flag in the same batch and publishes it as a
// record of the system table dupTable, which replicates like any table,
// so every replica lists it among its conflicts (kind "duplicate") and
// can resolve it (POST /v1/duplicates/{table}/{id}). Records that
// matched before the keys were declared are not flagged (declaring keys
// builds the index at the next start without flags).
type dedupe struct {
	r    *replica
	keys map[string][]string // table → key fields
	kick chan struct{}
}

// dupTable is the system table of suspected duplicates: one record per
// flagged record, id dupFlagID(table, id), fields "table", "id", "with"
// (the ids it matched), "keys" (the key values), "detected" (Unix ms),
// "status" ("open", then "kept", "merged" or "discarded"), and once
// resolved "resolution" ({"action", "with", "prefer", "node", "time"}).
const dupTable = "_replicad_duplicates"

// dupFlagID is the id of the flag about table/id in dupTable.
func dupFlagID(table, id string) string {
	h := sha256.Sum256([]byte(table + "\x00" + id))
	return hex.EncodeToString(h[:16])
}

// newDedupe returns the duplicate detector of r: on the arbitrating hub,
// when some table has key fields; nil otherwise (its methods then do
// nothing).
func newDedupe(r *replica) *dedupe {
	if r.arb == nil {
		return nil
	}
	d := &dedupe{r: r, keys: map[string][]string{}, kick: make(chan struct{}, 1)}
	for _, t := range r.a.cfg.KeyTables() {
		d.keys[t] = r.a.cfg.Tables[t].Keys
	}
	if len(d.keys) == 0 {
		return nil
	}
	return d
}

// keyDigest returns the digest of rec's key values, and false when rec
// does not exist or lacks a value (or has null) for a key field.
func keyDigest(keys []string, rec *crdt.Record) ([]byte, bool) {
	if rec == nil || !rec.Exists() {
		return nil, false
	}
	h := sha256.New()
	var n [8]byte
	for _, k := range keys {
		v, ok := rec.Get(k)
		if !ok || len(v) == 1 && v[0] == 0xc0 { // msgpack nil: JSON null
			return nil, false
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write(v)
	}
	return h.Sum(nil), true
}

// dupBatch is what one batch changed in the index, read before the store
// (which does not see the batch yet).
type dupBatch struct {
	d       *dedupe
	b       *store.Batch
	records map[string]*crdt.Record // table\0id → state after the batch
	filed   map[string][]byte       // table\0id → digest (nil: not filed)
	flagged bool
}

func (d *dedupe) batch(b *store.Batch, records map[string]*crdt.Record) *dupBatch {
	return &dupBatch{d: d, b: b, records: records, filed: map[string][]byte{}}
}

// filedAs returns the digest table/id is filed under, as of this batch.
func (db *dupBatch) filedAs(table, id string) ([]byte, bool) {
	if dg, ok := db.filed[table+"\x00"+id]; ok {
		return dg, dg != nil
	}
	dg, ok, err := db.d.r.store.KeyIndexOf(table, id)
	if err != nil {
		db.d.r.a.log.Error("duplicate detection: reading the key index", "table", table, "id", id, "error", err)
		return nil, false
	}
	return dg, ok
}

// record returns table/id's state as of this batch.
func (db *dupBatch) record(table, id string) *crdt.Record {
	if rec, ok := db.records[table+"\x00"+id]; ok {
		return rec
	}
	rec, err := db.d.r.store.Get(table, id)
	if err != nil {
		return nil
	}
	return rec
}

// matches returns the live records other than id filed under dg whose key
// values are still dg (the index is verified, not trusted), in id order.
func (db *dupBatch) matches(table, id string, dg []byte) []string {
	ids, err := db.d.r.store.KeyIndexIDs(table, dg, 0)
	if err != nil {
		db.d.r.a.log.Error("duplicate detection: reading the key index", "table", table, "error", err)
	}
	seen := map[string]bool{}
	var out []string
	consider := func(o string) {
		if o == id || seen[o] {
			return
		}
		seen[o] = true
		if cur, ok := db.filedAs(table, o); !ok || !bytes.Equal(cur, dg) {
			return
		}
		if got, ok := keyDigest(db.d.keys[table], db.record(table, o)); ok && bytes.Equal(got, dg) {
			out = append(out, o)
		}
	}
	for _, o := range ids {
		consider(o)
	}
	for k, f := range db.filed {
		if t, o, _ := strings.Cut(k, "\x00"); t == table && bytes.Equal(f, dg) {
			consider(o)
		}
	}
	sort.Strings(out)
	return out
}

// pendingFlag is a detected duplicate waiting to be published.
type pendingFlag struct {
	With     []string                   `json:"with"`
	Keys     map[string]json.RawMessage `json:"keys"`
	Detected int64                      `json:"detected"`
}

// track refiles table/id after a change (rec: its state now) and flags it
// when its key values changed to ones other live records have.
func (db *dupBatch) track(table, id string, rec *crdt.Record) {
	keys, ok := db.d.keys[table]
	if !ok {
		return
	}
	old, had := db.filedAs(table, id)
	dg, has := keyDigest(keys, rec)
	if had && has && bytes.Equal(old, dg) {
		return
	}
	k := table + "\x00" + id
	if had {
		db.b.DeleteKeyIndex(table, id, old)
		db.filed[k] = nil
	}
	if !has {
		return
	}
	with := db.matches(table, id, dg)
	db.b.PutKeyIndex(table, id, dg)
	db.filed[k] = dg
	if len(with) == 0 {
		return
	}
	pf := pendingFlag{With: with, Keys: map[string]json.RawMessage{}, Detected: time.Now().UnixMilli()}
	for _, f := range keys {
		v, _ := rec.Get(f)
		pf.Keys[f] = jsonValue(v)
	}
	data, err := json.Marshal(pf)
	if err != nil {
		return
	}
	db.b.PutDupPending(table, id, data)
	db.flagged = true
}

func (db *dupBatch) done() {
	if db.flagged {
		select {
		case db.d.kick <- struct{}{}:
		default:
		}
	}
}

// trackApplied runs in the batch that applies remote writes.
func (d *dedupe) trackApplied(b *store.Batch, ws []*crdt.Write, res *store.Result) {
	if d == nil || res == nil || len(res.Records) == 0 {
		return
	}
	db := d.batch(b, res.Records)
	names := make([]string, 0, len(res.Records))
	for k := range res.Records {
		if t, _, _ := strings.Cut(k, "\x00"); d.keys[t] != nil {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		t, id, _ := strings.Cut(k, "\x00")
		db.track(t, id, res.Records[k])
	}
	db.done()
}

// trackLocal runs in the batch of every local write (node.Node's write
// pipeline).
func (d *dedupe) trackLocal(b *store.Batch, res *store.WriteResult) error {
	if d == nil || res == nil || res.Write == nil || d.keys[res.Write.Table] == nil {
		return nil
	}
	w := res.Write
	db := d.batch(b, map[string]*crdt.Record{w.Table + "\x00" + w.ID: res.Record})
	db.track(w.Table, w.ID, res.Record)
	db.done()
	return nil
}

// indexDef is the stored definition of a table's index.
func indexDef(keys []string) []byte {
	b, _ := json.Marshal(keys)
	return b
}

// rebuild makes the key index match the configuration: it drops the
// index of tables no longer declared, and (re)builds, without flagging,
// those declared anew or with other keys. It runs at start, before any
// session or API request.
func (r *replica) rebuildKeyIndex() error {
	d := r.dupes
	st := r.store
	have, err := st.KeyIndexTables()
	if err != nil {
		return err
	}
	for _, t := range have {
		if d != nil && d.keys[t] != nil {
			continue
		}
		if err := st.Update(func(b *store.Batch) error { b.ClearKeyIndex(t); return b.Err() }); err != nil {
			return err
		}
	}
	if d == nil {
		return nil
	}
	for _, t := range r.a.cfg.KeyTables() {
		keys := d.keys[t]
		def, ok, err := st.KeyIndexDef(t)
		if err != nil {
			return err
		}
		if ok && bytes.Equal(def, indexDef(keys)) {
			continue
		}
		if err := st.Update(func(b *store.Batch) error { b.ClearKeyIndex(t); return b.Err() }); err != nil {
			return err
		}
		n := 0
		after := ""
		for {
			page, next, err := st.Scan(t, after, 500)
			if err != nil {
				return err
			}
			if err := st.Update(func(b *store.Batch) error {
				for _, e := range page {
					if dg, ok := keyDigest(keys, e.Record); ok {
						b.PutKeyIndex(t, e.ID, dg)
						n++
					}
				}
				return b.Err()
			}); err != nil {
				return err
			}
			if next == "" {
				break
			}
			after = next
		}
		if err := st.Update(func(b *store.Batch) error { b.PutKeyIndexDef(t, indexDef(keys)); return b.Err() }); err != nil {
			return err
		}
		r.a.log.Info("duplicate detection: key index built", "table", t, "keys", strings.Join(keys, ","), "records", n)
	}
	return nil
}

// publish writes the pending flags as records of dupTable; each write's
// batch removes its pending flag.
func (d *dedupe) publish() error {
	for {
		ps, err := d.r.store.DupPendings(100)
		if err != nil || len(ps) == 0 {
			return err
		}
		for _, p := range ps {
			var pf pendingFlag
			if err := json.Unmarshal(p.Value, &pf); err != nil {
				d.r.a.log.Error("dropping an undecodable duplicate flag", "table", p.Table, "id", p.ID, "error", err)
				if err := d.r.store.Update(func(b *store.Batch) error { b.DeleteDupPending(p.Table, p.ID); return b.Err() }); err != nil {
					return err
				}
				continue
			}
			fields, err := jsonFields(map[string]any{"table": p.Table, "id": p.ID, "with": pf.With, "keys": pf.Keys,
				"detected": pf.Detected, "status": "open"})
			if err != nil {
				return err
			}
			_, err = d.r.n.Write(dupTable, dupFlagID(p.Table, p.ID), fields, false, func(b *store.Batch, _ *store.WriteResult) error {
				b.DeleteDupPending(p.Table, p.ID)
				return b.Err()
			})
			if err != nil {
				return fmt.Errorf("publishing the duplicate flag on %s/%s: %w", p.Table, p.ID, err)
			}
			d.r.a.log.Info("suspected duplicate", "table", p.Table, "id", p.ID, "with", strings.Join(pf.With, ","))
		}
	}
}

// jsonFields turns Go values into fields (through JSON).
func jsonFields(m map[string]any) ([]crdt.FieldValue, error) {
	out := make([]crdt.FieldValue, 0, len(m))
	for name, x := range m {
		raw, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		v, err := crdt.ValueFromJSON(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, crdt.FieldValue{Name: name, Value: v})
	}
	return out, nil
}

// --- the flags as every replica sees them ---

// dupFlag is a record of dupTable as shown by the API.
type dupFlag = api.Duplicate

func decodeField(rec *crdt.Record, name string, dst any) bool {
	v, ok := rec.Get(name)
	if !ok {
		return false
	}
	b, err := v.JSON()
	return err == nil && json.Unmarshal(b, dst) == nil
}

func flagView(flagID string, rec *crdt.Record) (dupFlag, bool) {
	f := dupFlag{Kind: "duplicate", Flag: flagID, Candidates: []candidateJSON{}, With: []string{}, Keys: map[string]json.RawMessage{}}
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

// duplicates lists the flags of dupTable here (all, or only open ones).
func (rp *replica) duplicates(all bool) ([]dupFlag, error) {
	out := []dupFlag{}
	after := ""
	for {
		page, next, err := rp.store.Scan(dupTable, after, 500)
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
func (rp *replica) duplicateConflicts() ([]conflictJSON, error) {
	fs, err := rp.duplicates(false)
	if err != nil {
		return nil, err
	}
	out := make([]conflictJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, conflictJSON{Kind: "duplicate", Table: f.Table, ID: f.ID, Field: "", Candidates: []candidateJSON{}, With: f.With, Keys: f.Keys})
	}
	return out, nil
}

// dupResolveBody is the body of POST /v1/duplicates/{table}/{id}.
type dupResolveBody = api.DuplicateRequest

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
func (rp *replica) resolveDuplicate(table, id string, body dupResolveBody) (map[string]any, error) {
	frec, err := rp.store.Get(dupTable, dupFlagID(table, id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var f dupFlag
	ok := false
	if err == nil {
		f, ok = flagView(dupFlagID(table, id), frec)
	}
	if !ok || f.Status != "open" || f.Table != table || f.ID != id {
		return nil, errf(http.StatusNotFound, "%v on %s/%s", errNoFlag, table, id)
	}
	switch body.Action {
	case "keep", "discard", "merge":
	default:
		return nil, errf(http.StatusBadRequest, `action %q: want "keep", "merge" or "discard"`, body.Action)
	}
	with := body.With
	if with == "" && len(f.With) == 1 {
		with = f.With[0]
	}
	if with != "" && !slices.Contains(f.With, with) {
		return nil, errf(http.StatusBadRequest, "%s/%s was flagged as a duplicate of %s, not of %q", table, id, strings.Join(f.With, ", "), with)
	}
	prefer := body.Prefer
	if prefer == "" {
		prefer = "existing"
	}
	if prefer != "existing" && prefer != "new" {
		return nil, errf(http.StatusBadRequest, `prefer %q: want "existing" or "new"`, body.Prefer)
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
			return nil, errf(http.StatusBadRequest, `merge needs "with": one of %s`, strings.Join(f.With, ", "))
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
	fields, err := jsonFields(map[string]any{"status": status, "resolution": res})
	if err != nil {
		return nil, err
	}
	wr, err := rp.localWrite(dupTable, dupFlagID(table, id), fields, false)
	if err != nil {
		return nil, err
	}
	nf, _ := flagView(dupFlagID(table, id), wr.Record)
	out["duplicate"] = nf
	return out, nil
}
