package debugapi

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Host is what the debug endpoints need of the agent: the current
// replica and the public API's request parsing.
type Host interface {
	extapi.Current[Replica]
	extapi.Requests
}

// Config is what the debug endpoints report of the node's configuration.
type Config struct {
	// MaxClockOffset is the bound on remote stamps ahead of local time.
	MaxClockOffset time.Duration
	// Queues are the store's named work queues (the arbiter's, the
	// permission write-backs').
	Queues []store.QueueName
}

// Replica is the replica the endpoints read and write: its clock too.
type Replica interface {
	extapi.Records
	Clock() *hlc.Clock
}

// API is the debug endpoints.
type API struct {
	h Host
	c Config
}

// New returns the debug endpoints of h.
func New(h Host, c Config) *API { return &API{h: h, c: c} }

// Routes adds the endpoints.
func (a *API) Routes(rt extapi.Registrar) {
	rt.Handle("GET /v1/debug/digest", a.debugDigest)
	rt.Handle("GET /v1/debug/dump", a.debugDump)
	rt.Handle("PUT /v1/debug/tables/{table}/records/{id}", a.debugPut)
	rt.Handle("DELETE /v1/debug/tables/{table}/records/{id}", a.debugDelete)
}

func vvJSON(v crdt.VV) map[string]uint64 {
	out := make(map[string]uint64, len(v))
	for _, d := range v {
		out[d.Node.String()] = d.Seq
	}
	return out
}

type debugEntry struct {
	Node    string          `json:"node"`
	Seq     uint64          `json:"seq"`
	HLC     uint64          `json:"hlc"`
	Deleted bool            `json:"deleted,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"`
}

func debugEntries(es []crdt.Entry) []debugEntry {
	out := make([]debugEntry, 0, len(es))
	for _, e := range es {
		de := debugEntry{Node: e.Origin.String(), Seq: e.Seq, HLC: uint64(e.TS), Deleted: e.Delete}
		if !e.Delete && e.Value != nil {
			de.Value = node.JSONValue(e.Value)
		}
		out = append(out, de)
	}
	return out
}

type debugRecord struct {
	Table   string                     `json:"table"`
	ID      string                     `json:"id"`
	Exists  bool                       `json:"exists"`
	Applied map[string]uint64          `json:"applied"`
	Exist   []debugEntry               `json:"exist"`
	Fields  map[string][]debugEntry    `json:"fields"`
	Visible map[string]json.RawMessage `json:"visible"`
}

func debugRecordView(table, id string, rec *crdt.Record) debugRecord {
	out := debugRecord{Table: table, ID: id, Exists: rec.Exists(), Applied: vvJSON(rec.Applied), Exist: debugEntries(rec.Exist),
		Fields: map[string][]debugEntry{}, Visible: map[string]json.RawMessage{}}
	for _, name := range rec.FieldNames() {
		out.Fields[name] = debugEntries(rec.Candidates(name))
	}
	rec.Visible(func(name string, v crdt.Value) { out.Visible[name] = node.JSONValue(v) })
	return out
}

type debugWrite struct {
	Table  string                     `json:"table"`
	ID     string                     `json:"id"`
	Node   string                     `json:"node"`
	Seq    uint64                     `json:"seq"`
	HLC    uint64                     `json:"hlc"`
	Ctx    map[string]uint64          `json:"ctx"`
	Delete bool                       `json:"delete,omitempty"`
	Elided bool                       `json:"elided,omitempty"`
	Fields map[string]json.RawMessage `json:"fields"`
}

func debugWriteView(w *crdt.Write) debugWrite {
	out := debugWrite{Table: w.Table, ID: w.ID, Node: w.Origin.String(), Seq: w.Seq, HLC: uint64(w.TS), Ctx: vvJSON(w.Ctx),
		Delete: w.Delete, Elided: w.Elided, Fields: map[string]json.RawMessage{}}
	for _, f := range w.Fields {
		if w.Elided || f.Value == nil {
			out.Fields[f.Name] = nil
		} else {
			out.Fields[f.Name] = node.JSONValue(f.Value)
		}
	}
	return out
}

// scanAll calls fn for every record of every table (deleted ones too).
func scanAll(rp Replica, fn func(table string, e store.RecordEntry)) error {
	tables, err := rp.Store().Tables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		after := ""
		for {
			page, next, err := rp.Store().Scan(t, after, 500)
			if err != nil {
				return err
			}
			for _, e := range page {
				fn(t, e)
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return nil
}

// debugDigest: one SHA-256 over every record's canonical form (table and
// id included), per table too; replicas holding the same writes have equal
// digests. view_digest covers only what the record shows and can still
// decide: whether it exists, its existence candidates, and the live
// candidates of every field not merely cleared (not the applied vector,
// covers, or delete markers standing alone). Replicas holding the same writes can differ in
// bytes but not in view after a deleted record was collected on one of them
// before a write that had seen the delete re-created it (the harness
// reports it).
func (a *API) debugDigest(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(rp Replica) (any, error) {
		all := sha256.New()
		view := sha256.New()
		tables := map[string]string{}
		records := 0
		var cur string
		h := sha256.New()
		flush := func() {
			if cur != "" {
				tables[cur] = hex.EncodeToString(h.Sum(nil))
			}
		}
		err := scanAll(rp, func(t string, e store.RecordEntry) {
			if t != cur {
				flush()
				cur = t
				h = sha256.New()
			}
			for _, hh := range []interface{ Write([]byte) (int, error) }{all, h} {
				hh.Write([]byte(t))
				hh.Write([]byte{0})
				hh.Write([]byte(e.ID))
				hh.Write([]byte{0})
			}
			e.Record.WriteDigest(all)
			e.Record.WriteDigest(h)
			view.Write([]byte(t))
			view.Write([]byte{0})
			view.Write([]byte(e.ID))
			view.Write([]byte{0})
			writeViewDigest(view, e.Record)
			records++
		})
		if err != nil {
			return nil, err
		}
		flush()
		parked, err := rp.Store().ListParked()
		if err != nil {
			return nil, err
		}
		nq, err := queued(rp.Store(), a.c.Queues, 1000)
		if err != nil {
			return nil, err
		}
		hw := rp.Clock().HighWater()
		return map[string]any{
			"node": rp.ID().String(), "digest": hex.EncodeToString(all.Sum(nil)), "view_digest": hex.EncodeToString(view.Sum(nil)),
			"records": records, "tables": tables,
			"parked": len(parked), "parked_by_origin": parkedByOrigin(rp, parked), "queued": nq,
			"physical_ms": rp.Clock().Physical(), "high_water_ms": hw.Wall(), "max_offset_ms": a.c.MaxClockOffset.Milliseconds(),
		}, nil
	})
}

// parkedSummary is what one origin's parked writes wait for (debugDigest):
// how many, their sequence numbers, how many of those are held already
// (such a write never applies: it is not sent again), and how far the
// furthest stamp is still ahead of this node's physical clock (beyond
// the maximum offset: it waits for the clock).
type parkedSummary struct {
	Count      int    `json:"count"`
	Lo         uint64 `json:"lo"`
	Hi         uint64 `json:"hi"`
	Held       int    `json:"held"`
	AheadNowMs int64  `json:"ahead_now_ms"`
}

func parkedByOrigin(rp Replica, parked []*store.ParkedWrite) map[string]*parkedSummary {
	out := map[string]*parkedSummary{}
	held := map[hlc.NodeID]store.Held{}
	now := rp.Clock().Physical()
	for _, p := range parked {
		w := p.Write
		o := out[w.Origin.String()]
		if o == nil {
			o = &parkedSummary{Lo: w.Seq, AheadNowMs: w.TS.Wall() - now}
			out[w.Origin.String()] = o
			held[w.Origin] = rp.Store().HeldOf(w.Origin)
		}
		o.Count++
		o.Lo, o.Hi = min(o.Lo, w.Seq), max(o.Hi, w.Seq)
		if held[w.Origin].Contains(w.Seq) {
			o.Held++
		}
		o.AheadNowMs = max(o.AheadNowMs, w.TS.Wall()-now)
	}
	return out
}

// writeViewDigest writes what rec shows to h (see debugDigest).
func writeViewDigest(h hash.Hash, rec *crdt.Record) {
	var buf []byte
	entries := func(es []crdt.Entry) { buf = crdt.AppendEntriesDigest(buf, es) }
	if rec.Exists() {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	entries(rec.Exist)
	// A field whose candidates are all delete markers is cleared: it
	// shows nothing, whichever markers stand.
	for _, name := range rec.FieldNames() {
		cands := rec.Candidates(name)
		cleared := true
		for _, c := range cands {
			cleared = cleared && c.Delete
		}
		if cleared {
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		entries(cands)
	}
	h.Write(buf)
}

// debugDump returns every record's state, every write of the change log
// (values of elided writes are null) and the tombstone horizon (deleted
// records whose writes it covers may have been collected).
func (a *API) debugDump(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(rp Replica) (any, error) {
		recs := []debugRecord{}
		if err := scanAll(rp, func(t string, e store.RecordEntry) {
			recs = append(recs, debugRecordView(t, e.ID, e.Record))
		}); err != nil {
			return nil, err
		}
		writes := []debugWrite{}
		for origin := range rp.Store().Holdings() {
			if err := rp.Store().Stream(origin, 0, func(w *crdt.Write) error {
				writes = append(writes, debugWriteView(w))
				return nil
			}); err != nil {
				return nil, err
			}
		}
		horizon, err := rp.Store().GCHorizon()
		if err != nil {
			return nil, err
		}
		return map[string]any{"node": rp.ID().String(), "records": recs, "writes": writes, "gc_horizon": vvJSON(horizon)}, nil
	})
}

// debugWriteResult answers a debug write: the write's identity and the
// record as the public API shows it.
func debugWriteResult(rp Replica, table, id string, res *store.WriteResult) any {
	return map[string]any{"write": debugWriteView(res.Write), "record": rp.RecordView(table, id, res.Record)}
}

// debugPut is putRecord answering with the write made.
func (a *API) debugPut(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	fields, present, err := a.h.PutFields(r, nil)
	if err == nil && !present {
		err = extapi.Errorf(http.StatusBadRequest, `body needs "fields": an object of field names to JSON values`)
	}
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		res, err := rp.Write(table, id, fields, false, nil)
		if err != nil {
			return nil, err
		}
		return debugWriteResult(rp, table, id, res), nil
	})
}

// debugDelete is deleteRecord answering with the write made.
func (a *API) debugDelete(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	return a.h.With(func(rp Replica) (any, error) {
		if _, err := rp.Existing(table, id); err != nil {
			return nil, err
		}
		res, err := rp.Write(table, id, nil, true, nil)
		if err != nil {
			return nil, err
		}
		return debugWriteResult(rp, table, id, res), nil
	})
}

// queued counts the entries of the work queues qs, at most limit.
func queued(st *store.Store, qs []store.QueueName, limit int) (int, error) {
	n := 0
	for _, q := range qs {
		if n >= limit {
			break
		}
		es, err := st.QueueOf(q, limit-n)
		if err != nil {
			return 0, err
		}
		n += len(es)
	}
	return n, nil
}
