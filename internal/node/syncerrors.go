package node

import (
	"encoding/json"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// ErrorTable is the system table through which the arbitrating hub sends
// its sync errors to the other replicas: each replica copies into its own
// sync-error log (GET /v1/sync-errors, with retry) the entries that name
// it among the nodes involved, so the device that made a rejected or
// overridden change can see it and retry it.
const ErrorTable = "_replicad_errors"

// The kinds of sync errors.
const (
	// KindOverridden: a policy's ordinary outcome kept another value
	// (lww: a later stamp; client-wins: a change that reached the hub
	// later). Logged so that nothing is lost silently; not an alarm.
	KindOverridden = "overridden"
	// KindRejected: a change was undone (server-wins, write permissions,
	// the system tables' rules).
	KindRejected = "rejected"
)

// SyncErrorKind returns an entry's kind: its own, else (an entry of an
// older version) the one its policy gives.
func SyncErrorKind(kind, pol string) string {
	if kind == KindOverridden || kind == KindRejected {
		return kind
	}
	if pol == string(policy.LWW) || pol == string(policy.ClientWins) {
		return KindOverridden
	}
	return KindRejected
}

type replicatedError struct {
	Table   string            `json:"table"`
	Record  string            `json:"record"`
	Fields  []string          `json:"fields"`
	Losing  map[string][]byte `json:"losing"`
	Winning map[string][]byte `json:"winning"`
	Policy  string            `json:"policy"`
	Nodes   []uint64          `json:"nodes"`
	Detail  string            `json:"detail"`
	Time    int64             `json:"time"`
	Kind    string            `json:"kind,omitempty"` // absent from older versions' entries
}

// PublishSyncError writes e as record id of ErrorTable, with e's time
// (set to now if e has none, so that the hub's own entry and the mirrors
// agree).
func (n *Node) PublishSyncError(id string, e *store.SyncError) error {
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	data, err := json.Marshal(replicatedError{Table: e.Table, Record: e.Record, Fields: e.Fields, Losing: e.Losing,
		Winning: e.Winning, Policy: e.Policy, Nodes: e.Nodes, Detail: e.Detail, Time: e.Time, Kind: SyncErrorKind(e.Kind, e.Policy)})
	if err != nil {
		return err
	}
	v, err := crdt.ValueOf(string(data))
	if err != nil {
		return err
	}
	// "nodes": the ids (hex) of the nodes it names; a device whose reads
	// are restricted is served only the errors naming it (read permissions).
	ids := make([]any, 0, len(e.Nodes))
	for _, id := range e.Nodes {
		ids = append(ids, hlc.NodeID(id).String())
	}
	nv, err := crdt.ValueOf(ids)
	if err != nil {
		return err
	}
	_, err = n.Write(ErrorTable, id, []crdt.FieldValue{{Name: "error", Value: v}, {Name: "nodes", Value: nv}}, false, nil)
	return err
}

// MirrorSyncErrors runs in the batch applying remote writes (an apply
// hook of every node but the arbitrating hub): the sync errors of
// ErrorTable that name this node join its own log, once (the
// write that carries one is applied once).
func (n *Node) MirrorSyncErrors(b *store.Batch, writes []*crdt.Write, res *store.Result) error {
	for i, w := range writes {
		if w.Table != ErrorTable || res.Status[i] != store.Applied || w.Delete {
			continue
		}
		for _, f := range w.Fields {
			if f.Name != "error" {
				continue
			}
			x, err := f.Value.Decode()
			s, ok := x.(string)
			if err != nil || !ok {
				continue
			}
			var e replicatedError
			if json.Unmarshal([]byte(s), &e) != nil {
				continue
			}
			mine := false
			for _, id := range e.Nodes {
				mine = mine || hlc.NodeID(id) == n.id
			}
			if mine {
				b.AppendSyncError(&store.SyncError{Time: e.Time, Table: e.Table, Record: e.Record, Fields: e.Fields,
					Losing: e.Losing, Winning: e.Winning, Policy: e.Policy, Nodes: e.Nodes, Detail: e.Detail, Kind: SyncErrorKind(e.Kind, e.Policy)})
			}
		}
	}
	return nil
}

// SyncErrorView is a sync error as the API shows it.
func SyncErrorView(e *store.SyncError) api.SyncError {
	vals := func(m map[string][]byte) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k] = JSONValue(crdt.Value(v))
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
	return api.SyncError{ID: e.ID, Time: at, Table: e.Table, Record: e.Record,
		Fields: fields, Losing: vals(e.Losing), Winning: vals(e.Winning), Policy: e.Policy, Nodes: nodes, Detail: e.Detail, Retried: e.Retried,
		Kind: SyncErrorKind(e.Kind, e.Policy)}
}
