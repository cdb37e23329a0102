package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// PolicyTable is the system table through which a hub distributes the
// table policies to every replica: one record per table, its field
// "policy" the policy in force, and one field "h<HLC>" per change (the
// hub's clock when it made the change, 20 digits) naming the policy from
// then on, so that every replica agrees which policy judged which write:
// the latest change stamped before the write. It replicates like any
// table.
const PolicyTable = "_replicad_policy"

// HistoryField is the field of a PolicyTable record naming the policy
// from ts on.
func HistoryField(ts hlc.Timestamp) string { return fmt.Sprintf("h%020d", uint64(ts)) }

// PublishPolicies writes policies into PolicyTable where they differ (on a
// hub, at start: the configured ones).
func (n *Node) PublishPolicies(policies map[string]string) error {
	for table, p := range policies {
		if !store.ValidID(table) {
			continue
		}
		v := crdt.MustValue(p)
		if rec, err := n.st.Get(PolicyTable, table); err == nil {
			if cur, ok := rec.Get("policy"); ok && string(cur) == string(v) {
				continue
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		fields := []crdt.FieldValue{{Name: HistoryField(n.clock.Now()), Value: v}, {Name: "policy", Value: v}}
		if _, err := n.Write(PolicyTable, table, fields, false, nil); err != nil {
			return err
		}
	}
	return nil
}

// PolicyOf returns table's policy: this node's configuration
// (Options.Policies), else what a hub distributed, else lww.
func (n *Node) PolicyOf(table string) policy.Kind {
	return n.PolicyOfIn(table, n.policyRecord(table))
}

// PolicyOfIn is PolicyOf over rec, table's record of PolicyTable (nil:
// none): for a store hook, which reads it through its batch
// (policyRecordIn).
func (n *Node) PolicyOfIn(table string, rec *crdt.Record) policy.Kind {
	if p, ok := n.policies[table]; ok {
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

// sysCache keeps records of small system tables (PolicyTable, the
// security table) read on every API write and view, until the store's
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

// SysRecord returns table/id of a small system table, cached until the
// table changes, or nil if there is none (or it cannot be read). The
// record is shared: read it only.
func (n *Node) SysRecord(table, id string) *crdt.Record {
	st := n.st
	ver := st.TableVersion(table) // before the read: a later change moves it
	c := &n.sys
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

// policyRecord returns table's record of PolicyTable (nil if none).
func (n *Node) policyRecord(table string) *crdt.Record { return n.SysRecord(PolicyTable, table) }

// PolicyAt returns the policy that judges a write of table stamped ts:
// the latest change stamped before it; before any change, lww.
func (n *Node) PolicyAt(table string, ts hlc.Timestamp) policy.Kind {
	return policyIn(n.policyRecord(table), ts)
}

// PolicyInBatch is PolicyAt for a store hook: it reads the policy record
// through the hook's batch (store.Batch.Get), never the Store.
func PolicyInBatch(b *store.Batch, table string, ts hlc.Timestamp) (policy.Kind, error) {
	rec, err := policyRecordIn(b, table)
	return policyIn(rec, ts), err
}

// policyRecordIn is table's record of PolicyTable as batch b leaves it
// (nil if none).
func policyRecordIn(b *store.Batch, table string) (*crdt.Record, error) {
	rec, err := b.Get(PolicyTable, table)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// policyIn is PolicyAt over rec, table's record of PolicyTable (nil:
// none).
func policyIn(rec *crdt.Record, ts hlc.Timestamp) policy.Kind {
	if rec == nil {
		return policy.LWW
	}
	var best string
	for _, name := range rec.FieldNames() {
		if len(name) == 21 && name[0] == 'h' && name <= HistoryField(ts) && name > best {
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
