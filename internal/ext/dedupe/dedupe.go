package dedupe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Detector is the duplicate detector of the arbitrating hub.
type Detector struct {
	h    Host
	keys map[string][]string // table → key fields
	kick chan struct{}
}

// Host is what duplicate detection needs of the node it runs on.
type Host interface {
	extapi.Node
	extapi.Writer
}

// Table is the system table of suspected duplicates: one record per
// flagged record, id FlagID(table, id), fields "table", "id", "with"
// (the ids it matched), "keys" (the key values), "detected" (Unix ms),
// "status" ("open", then "kept", "merged" or "discarded"), and once
// resolved "resolution" ({"action", "with", "prefer", "node", "time"}).
//
// Its name and who writes it (the arbitrating hub; a device resolving a
// flag sets "status" and "resolution" only: node.DuplicateDeviceFields)
// are stated with every system table's (node.SysTables), by which every
// hub judges remote writes.
const Table = node.DuplicatesTable

// FlagID is the id of the flag about table/id in Table.
func FlagID(table, id string) string {
	h := sha256.Sum256([]byte(table + "\x00" + id))
	return hex.EncodeToString(h[:16])
}

// New returns the duplicate detector of the arbitrating hub h for the
// tables' key fields (table → fields); nil when no table has any (its
// methods then do nothing).
func New(h Host, keys map[string][]string) *Detector {
	d := &Detector{h: h, keys: map[string][]string{}, kick: make(chan struct{}, 1)}
	for t, k := range keys {
		if len(k) > 0 {
			d.keys[t] = k
		}
	}
	if len(d.keys) == 0 {
		return nil
	}
	return d
}

// KeyDigest returns the digest of rec's key values, and false when rec
// does not exist or lacks a value (or has null) for a key field.
func KeyDigest(keys []string, rec *crdt.Record) ([]byte, bool) {
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
	d       *Detector
	b       *store.Batch
	records map[string]*crdt.Record // table\0id → state after the batch
	filed   map[string][]byte       // table\0id → digest (nil: not filed)
	flagged bool
}

func (d *Detector) batch(b *store.Batch, records map[string]*crdt.Record) *dupBatch {
	return &dupBatch{d: d, b: b, records: records, filed: map[string][]byte{}}
}

// filedAs returns the digest table/id is filed under, as of this batch.
func (db *dupBatch) filedAs(table, id string) ([]byte, bool) {
	if dg, ok := db.filed[table+"\x00"+id]; ok {
		return dg, dg != nil
	}
	dg, ok, err := db.d.h.Store().KeyIndexOf(table, id)
	if err != nil {
		db.d.h.Log().Error("duplicate detection: reading the key index", "table", table, "id", id, "error", err)
		return nil, false
	}
	return dg, ok
}

// record returns table/id's state as of this batch.
func (db *dupBatch) record(table, id string) *crdt.Record {
	if rec, ok := db.records[table+"\x00"+id]; ok {
		return rec
	}
	rec, err := db.d.h.Store().Get(table, id)
	if err != nil {
		return nil
	}
	return rec
}

// matches returns the live records other than id filed under dg whose key
// values are still dg (the index is verified, not trusted), in id order.
func (db *dupBatch) matches(table, id string, dg []byte) []string {
	ids, err := db.d.h.Store().KeyIndexIDs(table, dg, 0)
	if err != nil {
		db.d.h.Log().Error("duplicate detection: reading the key index", "table", table, "error", err)
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
		if got, ok := KeyDigest(db.d.keys[table], db.record(table, o)); ok && bytes.Equal(got, dg) {
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

// PendingFlag is a detected duplicate waiting to be published.
type PendingFlag struct {
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
	dg, has := KeyDigest(keys, rec)
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
	pf := PendingFlag{With: with, Keys: map[string]json.RawMessage{}, Detected: time.Now().UnixMilli()}
	for _, f := range keys {
		v, _ := rec.Get(f)
		pf.Keys[f] = node.JSONValue(v)
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

// TrackApplied runs in the batch that applies remote writes (an apply
// hook of the node).
func (d *Detector) TrackApplied(b *store.Batch, ws []*crdt.Write, res *store.Result) error {
	if d == nil || res == nil || len(res.Records) == 0 {
		return nil
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
	return nil
}

// TrackLocal runs in the batch of every local write (a local-write hook
// of the node's write pipeline).
func (d *Detector) TrackLocal(b *store.Batch, res *store.WriteResult) error {
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

// Rebuild makes the key index match the configuration (d's tables; d
// nil: none): it drops the index of tables no longer declared, and
// (re)builds, without flagging, those declared anew or with other keys.
// It runs at start, before any session or API request.
func Rebuild(h Host, d *Detector) error {
	st := h.Store()
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
	for _, t := range d.tables() {
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
					if dg, ok := KeyDigest(keys, e.Record); ok {
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
		h.Log().Info("duplicate detection: key index built", "table", t, "keys", strings.Join(keys, ","), "records", n)
	}
	return nil
}

// tables returns the tables with key fields, sorted.
func (d *Detector) tables() []string {
	out := make([]string, 0, len(d.keys))
	for t := range d.keys {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Publish writes the pending flags as records of Table; each write's
// batch removes its pending flag.
func (d *Detector) Publish() error {
	for {
		ps, err := d.h.Store().DupPendings(100)
		if err != nil || len(ps) == 0 {
			return err
		}
		for _, p := range ps {
			var pf PendingFlag
			if err := json.Unmarshal(p.Value, &pf); err != nil {
				d.h.Log().Error("dropping an undecodable duplicate flag", "table", p.Table, "id", p.ID, "error", err)
				if err := d.h.Store().Update(func(b *store.Batch) error { b.DeleteDupPending(p.Table, p.ID); return b.Err() }); err != nil {
					return err
				}
				continue
			}
			fields, err := node.JSONFields(map[string]any{"table": p.Table, "id": p.ID, "with": pf.With, "keys": pf.Keys,
				"detected": pf.Detected, "status": "open"})
			if err != nil {
				return err
			}
			_, err = d.h.Write(Table, FlagID(p.Table, p.ID), fields, false, func(b *store.Batch, _ *store.WriteResult) error {
				b.DeleteDupPending(p.Table, p.ID)
				return b.Err()
			})
			if err != nil {
				return fmt.Errorf("publishing the duplicate flag on %s/%s: %w", p.Table, p.ID, err)
			}
			d.h.Log().Info("suspected duplicate", "table", p.Table, "id", p.ID, "with", strings.Join(pf.With, ","))
		}
	}
}

// Run publishes the flags as they are detected, until ctx is done.
func (d *Detector) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := d.Publish(); err != nil && ctx.Err() == nil {
			d.h.Log().Error("duplicate detection: publishing flags", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-t.C:
		}
	}
}
