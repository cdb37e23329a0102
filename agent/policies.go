package agent

import (
	"errors"
	"fmt"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// policyTable is the system table through which a hub distributes the
// table policies to every replica: one record per table, its field
// "policy" the policy in force, and one field "h<HLC>" per change (the
// hub's clock when it made the change, 20 digits) naming the policy from
// then on, so that every replica agrees which policy judged which write:
// the latest change stamped before the write. It replicates like any
// table.
const policyTable = "_replicad_policy"

func historyField(ts hlc.Timestamp) string { return fmt.Sprintf("h%020d", uint64(ts)) }

// publishPolicies writes the configured policies into policyTable where
// they differ (on a hub, at start).
func (r *replica) publishPolicies(policies map[string]string) error {
	for table, p := range policies {
		if !store.ValidID(table) {
			continue
		}
		v := crdt.MustValue(p)
		if rec, err := r.store.Get(policyTable, table); err == nil {
			if cur, ok := rec.Get("policy"); ok && string(cur) == string(v) {
				continue
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		fields := []crdt.FieldValue{{Name: historyField(r.clock.Now()), Value: v}, {Name: "policy", Value: v}}
		if _, err := r.localWrite(policyTable, table, fields, false); err != nil {
			return err
		}
	}
	return nil
}

// policyOf returns table's policy: this node's configuration, else what a
// hub distributed, else lww.
func (r *replica) policyOf(table string) policy.Kind {
	return r.policyOfIn(table, r.policyRecord(table))
}

// policyOfIn is policyOf over rec, table's record of policyTable (nil:
// none).
func (r *replica) policyOfIn(table string, rec *crdt.Record) policy.Kind {
	if p, ok := r.a.cfg.Policies[table]; ok {
		if k, err := policy.Parse(p); err == nil {
			return k
		}
	}
	if rec != nil {
		if v, ok := rec.Get("policy"); ok {
			if x, err := v.Decode(); err == nil {
				if s, ok := x.(string); ok {
					if k, err := policy.Parse(s); err == nil {
						return k
					}
				}
			}
		}
	}
	return policy.LWW
}

// sysCache keeps records of small system tables (policyTable,
// securityTable) read on every API write and view, until the store's
// version of their table moves (store.TableVersion).
type sysCache struct {
	mu     sync.Mutex
	st     *store.Store
	tables map[string]*sysTable
}

type sysTable struct {
	ver  uint64
	recs map[string]*crdt.Record // nil: no record (read-only otherwise)
}

// sysRecord returns table/id, or nil if there is none (or it cannot be
// read). The record is shared: read it only.
func (r *replica) sysRecord(table, id string) *crdt.Record {
	st := r.store
	ver := st.TableVersion(table) // before the read: a later change moves it
	c := &r.sys
	c.mu.Lock()
	if c.st != st || c.tables == nil {
		c.st, c.tables = st, map[string]*sysTable{}
	}
	t := c.tables[table]
	if t == nil || t.ver != ver {
		t = &sysTable{ver: ver, recs: map[string]*crdt.Record{}}
		c.tables[table] = t
	}
	rec, ok := t.recs[id]
	c.mu.Unlock()
	if ok {
		return rec
	}
	rec, err := st.Get(table, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = nil
	case err != nil:
		return nil // not cached: read again next time
	}
	c.mu.Lock()
	if c.st == st && c.tables[table] == t {
		t.recs[id] = rec
	}
	c.mu.Unlock()
	return rec
}

// policyRecord returns table's record of policyTable (nil if none).
func (r *replica) policyRecord(table string) *crdt.Record { return r.sysRecord(policyTable, table) }

// policyAt returns the policy that judges a write of table stamped ts:
// the latest change stamped before it; before any change, lww.
func (r *replica) policyAt(table string, ts hlc.Timestamp) policy.Kind {
	return policyIn(r.policyRecord(table), ts)
}

// policyInBatch is policyAt for a store hook.
func policyInBatch(b *store.Batch, table string, ts hlc.Timestamp) (policy.Kind, error) {
	rec, err := policyRecordIn(b, table)
	return policyIn(rec, ts), err
}

// policyRecordIn is policyRecord for a store hook, which reads through
// its batch (store.Batch.Get), never the Store.
func policyRecordIn(b *store.Batch, table string) (*crdt.Record, error) {
	rec, err := b.Get(policyTable, table)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// policyIn is policyAt over rec, table's record of policyTable (nil: none).
func policyIn(rec *crdt.Record, ts hlc.Timestamp) policy.Kind {
	if rec == nil {
		return policy.LWW
	}
	var best string
	for _, name := range rec.FieldNames() {
		if len(name) == 21 && name[0] == 'h' && name <= historyField(ts) && name > best {
			if _, ok := rec.Get(name); ok {
				best = name
			}
		}
	}
	if best == "" {
		return policy.LWW
	}
	v, _ := rec.Get(best)
	if x, err := v.Decode(); err == nil {
		if s, ok := x.(string); ok {
			if k, err := policy.Parse(s); err == nil {
				return k
			}
		}
	}
	return policy.LWW
}

// hubView remembers what the hubs this node syncs with hold (from their
// Have at each session), to tell which changes are still tentative.
type hubView struct {
	mu   sync.Mutex
	hubs map[hlc.NodeID]map[hlc.NodeID]store.Held
}

func (h *hubView) observe(p replication.Peer, have map[hlc.NodeID]store.Held) {
	if p.Role != "hub" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hubs == nil {
		h.hubs = map[hlc.NodeID]map[hlc.NodeID]store.Held{}
	}
	h.hubs[p.Node] = have
}

// isHub reports whether n showed itself as a hub in a session with this
// node.
func (h *hubView) isHub(n hlc.NodeID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.hubs[n]
	return ok
}

// pending reports whether rec, under policy k, shows a change no hub is
// known to hold yet (the arbiter has not decided it). On a hub nothing is
// pending: it decides as it applies.
func (r *replica) pending(k policy.Kind, rec *crdt.Record) bool {
	if !k.NeedsArbiter() || r.a.cfg.Role == "hub" {
		return false
	}
	h := r.hubs
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hubs) == 0 {
		return policy.Pending(k, rec, 0, func(crdt.Dot) bool { return false })
	}
	for id, have := range h.hubs {
		if !policy.Pending(k, rec, id, func(d crdt.Dot) bool { return have[d.Node].Contains(d.Seq) }) {
			return false
		}
	}
	return true
}
