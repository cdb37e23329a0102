package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/store"
)

// FOR TESTING ONLY: debug endpoints for the fault-testing harness
// (test/e2e/faults_test.go). They exist only when the agent runs with the
// environment variable REPLICAD_TESTING_DEBUG_API=1 (Config.DebugAPI); otherwise they are
// not registered and answer 404 like any unknown path. They expose
// replication internals (dots, causal contexts, the change log) that the
// public API keeps to itself, so that a checker can judge every
// acknowledged write:
//
//	GET    /v1/debug/digest                       state digest of every table, parked and queued counts, the HLC
//	GET    /v1/debug/dump                         every record's full state, every write in the change log, the tombstone horizon
//	PUT    /v1/debug/tables/{table}/records/{id}  as the public PUT, answering with the write's dot, stamp and context
//	DELETE /v1/debug/tables/{table}/records/{id}  as the public DELETE, likewise
//
// debugRoutes registers the debug endpoints when Config.DebugAPI (the
// testing environment variable) enables them.
func (a *Agent) debugRoutes(rt *httpapi.Router) {
	if !a.cfg.DebugAPI {
		return
	}
	a.log.Warn("debug endpoints enabled (testing only)", "env", config.DebugAPIEnv)
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
			de.Value = jsonValue(e.Value)
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
	rec.Visible(func(name string, v crdt.Value) { out.Visible[name] = jsonValue(v) })
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
			out.Fields[f.Name] = jsonValue(f.Value)
		}
	}
	return out
}

// scanAll calls fn for every record of every table (deleted ones too).
func (rp *replica) scanAll(fn func(table string, e store.RecordEntry)) error {
	tables, err := rp.store.Tables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		after := ""
		for {
			page, next, err := rp.store.Scan(t, after, 500)
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
func (a *Agent) debugDigest(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
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
		err := rp.scanAll(func(t string, e store.RecordEntry) {
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
		parked, err := rp.store.ListParked()
		if err != nil {
			return nil, err
		}
		var queued []store.Queued
		for _, q := range []store.QueueName{arbiter.Queue, writeBackQueue} {
			if len(queued) >= 1000 {
				break
			}
			qs, err := rp.store.QueueOf(q, 1000-len(queued))
			if err != nil {
				return nil, err
			}
			queued = append(queued, qs...)
		}
		hw := rp.clock.HighWater()
		return map[string]any{
			"node": rp.node.String(), "digest": hex.EncodeToString(all.Sum(nil)), "view_digest": hex.EncodeToString(view.Sum(nil)),
			"records": records, "tables": tables,
			"parked": len(parked), "queued": len(queued),
			"physical_ms": rp.clock.Physical(), "high_water_ms": hw.Wall(), "max_offset_ms": a.cfg.MaxClockOffset.Milliseconds(),
		}, nil
	})
}

// writeViewDigest writes what rec shows to h (see debugDigest).
func writeViewDigest(h hash.Hash, rec *crdt.Record) {
	var buf []byte
	entries := func(es []crdt.Entry) {
		buf = binary.AppendUvarint(buf, uint64(len(es)))
		for _, e := range es {
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.Origin))
			buf = binary.AppendUvarint(buf, e.Seq)
			buf = binary.BigEndian.AppendUint64(buf, uint64(e.TS))
			if e.Delete {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
			buf = binary.AppendUvarint(buf, uint64(len(e.Value)))
			buf = append(buf, e.Value...)
		}
	}
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
func (a *Agent) debugDump(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		recs := []debugRecord{}
		if err := rp.scanAll(func(t string, e store.RecordEntry) {
			recs = append(recs, debugRecordView(t, e.ID, e.Record))
		}); err != nil {
			return nil, err
		}
		writes := []debugWrite{}
		for origin := range rp.store.Holdings() {
			if err := rp.store.Stream(origin, 0, func(w *crdt.Write) error {
				writes = append(writes, debugWriteView(w))
				return nil
			}); err != nil {
				return nil, err
			}
		}
		horizon, err := rp.store.GCHorizon()
		if err != nil {
			return nil, err
		}
		return map[string]any{"node": rp.node.String(), "records": recs, "writes": writes, "gc_horizon": vvJSON(horizon)}, nil
	})
}

// debugWriteResult answers a debug write: the write's identity and the
// record as the public API shows it.
func debugWriteResult(rp *replica, table, id string, res *store.WriteResult) any {
	return map[string]any{"write": debugWriteView(res.Write), "record": rp.recordView(table, id, res.Record)}
}

// debugPut is putRecord answering with the write made.
func (a *Agent) debugPut(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	var body putBody
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Fields == nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, `body needs "fields": an object of field names to JSON values`)
	}
	fields, err := body.values()
	if err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		res, err := rp.localWrite(table, id, fields, false)
		if err != nil {
			return nil, err
		}
		return debugWriteResult(rp, table, id, res), nil
	})
}

// debugDelete is deleteRecord answering with the write made.
func (a *Agent) debugDelete(w http.ResponseWriter, r *http.Request) (any, error) {
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
		return debugWriteResult(rp, table, id, res), nil
	})
}
