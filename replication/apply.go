package replication

import (
	"fmt"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// applyRemote applies writes and empties and, in the same batch, keeps
// the records of filtered tables hidden or shown by the scope rule (see
// markScope); hide lists records to hide with the writes skipped for them.
// It returns the records that must be fetched whole before they can be
// shown (they entered the scope through writes alone). from is the peer
// that sent the writes (Admit judges them).
func (l *Local) applyRemote(from Peer, writes []*crdt.Write, empties map[hlc.NodeID][]store.SeqRange, hide, purge map[RecordKey]crdt.VV) (*store.Result, []RecordKey, error) {
	if l.Admit != nil && len(writes) > 0 {
		writes = l.Admit(from, writes)
	}
	// Fields this replica may not hold are not stored, whoever sent them.
	writes = l.scope().projectWrites(writes)
	var fetch []RecordKey
	visible := map[string]bool{}
	if !l.scope().All {
		for _, w := range writes {
			if l.scope().NeedsRecord(w.Table) {
				key := w.Table + "\x00" + w.ID
				if _, ok := visible[key]; !ok {
					visible[key] = l.visible(w.Table, w.ID)
				}
			}
		}
	}
	horizon, err := l.Store.GCHorizon()
	if err != nil {
		return nil, nil, err
	}
	scopeHook := func(b Batch, res *store.Result) error {
		// Deletes that arrive already under the tombstone horizon are
		// collected at once, as every other replica has done.
		if len(horizon) > 0 {
			for key, rec := range res.Records {
				if rec.Deleted() && rec.Applied.LessEq(horizon) {
					table, id, _ := strings.Cut(key, "\x00")
					b.CollectRecord(table, id)
				}
			}
		}
		if l.scope().All {
			return nil
		}
		for key, rec := range res.Records {
			table, id, _ := strings.Cut(key, "\x00")
			if !l.scope().NeedsRecord(table) {
				continue
			}
			if l.markScope(b, table, id, rec, false, visible[key]) {
				fetch = append(fetch, RecordKey{Table: table, ID: id})
			}
		}
		for k, skipped := range hide {
			b.SetHidden(k.Table, k.ID, true, skipped)
		}
		for k, skipped := range purge {
			b.Purge(k.Table, k.ID, skipped)
		}
		return nil
	}
	res, err := l.Store.ApplyRemoteScoped(l.Clock, writes, empties, func(b Batch, res *store.Result) error {
		if err := scopeHook(b, res); err != nil {
			return err
		}
		if l.ApplyHook != nil {
			sb, ok := b.(*store.Batch)
			if !ok {
				return fmt.Errorf("replication: ApplyHook needs a *store.Store; the store's batch is a %T", b)
			}
			return l.ApplyHook(sb, writes, res)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(fetch, func(i, j int) bool {
		return fetch[i].Table < fetch[j].Table || fetch[i].Table == fetch[j].Table && fetch[i].ID < fetch[j].ID
	})
	return res, fetch, nil
}

// LocalWriteHook returns the hook for store.WriteWith that keeps the scope
// rule for local writes: a local write that moves a record out of this
// replica's scope hides it (it stays on the hub and other replicas).
func (l *Local) LocalWriteHook() func(*store.Batch, *store.WriteResult) error {
	return func(b *store.Batch, r *store.WriteResult) error {
		w := r.Write
		if sc := l.scope(); sc.NeedsRecord(w.Table) && r.Record.Exists() && !sc.Selects(w.Table, w.ID, r.Record, l.eval()) {
			b.SetHidden(w.Table, w.ID, true, nil)
		}
		return nil
	}
}

// visible reports whether this replica shows table/id: it exists, is in
// scope and is not hidden.
func (l *Local) visible(table, id string) bool {
	if _, hidden := l.hiddenSkipped(table, id); hidden {
		return false
	}
	rec, err := l.Store.GetAny(table, id)
	return err == nil && rec.Exists() && l.scope().Selects(table, id, rec, l.eval())
}

// markScope keeps a record of a filtered table hidden or shown. Out of
// scope: hidden. In scope: a hidden record is shown again only from a
// complete state (a whole-record merge from a sender whose scope covers
// this replica's) that includes every write skipped while it was hidden,
// since senders skipped its writes meanwhile; and a record that was not
// shown and enters the scope through writes alone is hidden until such a
// state arrives, since this replica may lack concurrent writes to it that
// were outside its scope when they were sent. It reports whether the
// record needs that whole state.
func (l *Local) markScope(b Batch, table, id string, rec *crdt.Record, complete, wasVisible bool) (fetch bool) {
	if !rec.Exists() {
		return false // nothing to show; deletes keep propagating
	}
	if !l.scope().Selects(table, id, rec, l.eval()) {
		b.SetHidden(table, id, true, nil)
		return false
	}
	// The batch's hidden mark: an earlier part of the same batch (another
	// state of the record, a hide) may have changed the committed one.
	skipped, hidden := b.HiddenSkipped(table, id)
	switch {
	case hidden && complete && skipped.LessEq(rec.Applied):
		b.SetHidden(table, id, false, nil)
	case hidden:
		b.SetHidden(table, id, true, nil) // it has state again: no longer purged
		return true
	case !wasVisible && !complete:
		b.SetHidden(table, id, true, nil)
		return true
	}
	return false
}

func (l *Local) hiddenSkipped(table, id string) (crdt.VV, bool) {
	if h := l.Capabilities().Hidden; h != nil {
		return h.HiddenSkipped(table, id)
	}
	return nil, false
}

// mergeRecord merges a whole record and applies the same scope rule;
// complete says the sender's scope covers this replica's.
func (l *Local) mergeRecord(table, id string, rec *crdt.Record, complete bool) (bool, error) {
	wasVisible := l.scope().NeedsRecord(table) && l.visible(table, id)
	rec = l.scope().ProjectRecord(table, rec)
	return l.Store.MergeRecordScoped(l.Clock, table, id, rec, func(b Batch, merged *crdt.Record) error {
		// A record of a whole table hidden here (purged when this
		// replica's read permissions changed) is shown again by the same
		// rule.
		if _, hidden := b.HiddenSkipped(table, id); l.scope().NeedsRecord(table) || hidden {
			l.markScope(b, table, id, merged, complete, wasVisible)
		}
		return nil
	})
}
