package replication

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Reconciling a filtered scope with a hub. The change log carries the
// writes to records a replica holds; but which records it holds changes
// without any write too: time passes under a filter that reads today, a
// profile changes, a related record's reference moves. So, per filtered
// table whose interval has elapsed (or when forced: a new scope, a sync
// asked for), a replica asks a peer whose scope covers its own for the
// listing of the records its scope selects by the peer's state (Scan).
// Listed records it does not show, or holds older than listed, are
// fetched whole (and shown: records entering the scope, in the tables'
// priority order); records it shows that are not listed are refreshed
// (Held), so the peer says they are out of scope and they are hidden or
// purged (leaving the scope: no delete is replicated). Records the peer
// lacks (this replica's own new records) stay.

// maxListed bounds one listing.
const maxListed = 1_000_000

// maxPerReq bounds the records of one RecordReq (serveRecords refuses
// more).
const maxPerReq = 10000

// adopt puts in force the scope a hub assigned.
func (s *Session) adopt(sc Scope) {
	old := s.l.scope()
	if reflect.DeepEqual(sc, old) {
		return
	}
	s.l.SetScope(sc)
	if err := s.l.readChange(old, sc); err != nil {
		// Not kept: the next session adopts it again and retries (the
		// peer serves the new scope meanwhile).
		s.l.Log.Error("applying the assigned scope to the records held failed", "error", err)
		s.l.SetScope(old)
		return
	}
	s.l.Log.Info("the hub assigned this replica a new scope", "profile", sc.Profile, "scope", sc.String())
	if s.l.OnAssigned != nil {
		s.l.OnAssigned(sc)
	}
}

// reconcile appends the Scan request for the filtered tables due, if the
// peer's scope covers this replica's.
func (s *Session) reconcile(out []Msg) []Msg {
	sc := s.l.scope()
	if !s.peer.Scope.Covers(sc) {
		return out
	}
	var tables []string
	if !sc.All {
		tables = s.l.dueScans(sc)
	}
	for _, t := range s.l.rescans() {
		if !slices.Contains(tables, t) && sc.lists([]byte(t)) {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return out
	}
	s.awaiting++
	s.asked = append(s.asked, request{scan: tables})
	return append(out, Msg{RecordReq: &RecordReq{Scan: tables}})
}

// serveListing answers a Scan: the live records of each table that the
// peer's scope selects here.
func (s *Session) serveListing(req *RecordReq) ([]Msg, error) {
	if len(req.Keys) > 0 || len(req.Held) > 0 {
		return nil, fmt.Errorf("%w: a scan request also asks for records", ErrProtocol)
	}
	scn := s.l.Capabilities().Scan
	if scn == nil {
		// An empty listing would say the peer's records all left its
		// scope.
		return nil, fmt.Errorf("replication: a peer asks for a listing of %v and the store cannot list records (it lacks Scan)", req.Scan)
	}
	resp := &Records{Listed: []Listed{}}
	ev := s.peerEval()
	for _, table := range req.Scan {
		err := eachRecord(scn, table, func(e store.RecordEntry) error {
			if !e.Record.Exists() || !s.peer.Scope.Selects(table, e.ID, e.Record, ev) {
				return nil
			}
			if len(resp.Listed) == maxListed {
				return fmt.Errorf("replication: scan of %v selects more than %d records", req.Scan, maxListed)
			}
			resp.Listed = append(resp.Listed, Listed{Table: table, ID: e.ID, Applied: vvToFlat(e.Record.Applied)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return []Msg{{Records: resp}}, nil
}

// receiveListing compares a listing with what this replica shows and asks
// for the records entering and leaving its scope.
func (s *Session) receiveListing(tables []string, r *Records) ([]Msg, error) {
	if len(r.Recs) > 0 {
		return nil, fmt.Errorf("%w: a scan answer with records", ErrProtocol)
	}
	s.l.rescanned(tables)
	asked := map[string]bool{}
	for _, t := range tables {
		asked[t] = true
	}
	listed := make(map[RecordKey]bool, len(r.Listed))
	var fetch []RecordKey
	for _, e := range r.Listed {
		if !asked[e.Table] || !store.ValidID(e.ID) || len(e.Applied)%2 != 0 {
			return nil, fmt.Errorf("%w: scan answer lists %q/%q", ErrProtocol, e.Table, e.ID)
		}
		k := RecordKey{Table: e.Table, ID: e.ID}
		listed[k] = true
		var theirs crdt.VV
		for i := 0; i < len(e.Applied); i += 2 {
			theirs.Set(crdt.Dot{Node: hlc.NodeID(e.Applied[i]), Seq: e.Applied[i+1]})
		}
		rec, err := s.l.Store.GetAny(e.Table, e.ID)
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrOutOfScope):
			return nil, err
		case err != nil || !s.l.visible(e.Table, e.ID) || !theirs.LessEq(rec.Applied):
			fetch = append(fetch, k)
		}
	}
	// Shown here, not listed: leaving the scope (or not at the peer yet).
	var leave []RecordKey
	if scn := s.l.Capabilities().Scan; scn != nil {
		for _, table := range tables {
			err := eachRecord(scn, table, func(e store.RecordEntry) error {
				if k := (RecordKey{Table: table, ID: e.ID}); e.Record.Exists() && !listed[k] {
					leave = append(leave, k)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	if len(fetch)+len(leave) > 0 {
		s.l.Log.Debug("reconciling the scope", "peer", s.peer.Node, "tables", tables, "entering", len(fetch), "leaving", len(leave))
	}
	var out []Msg
	for len(fetch) > 0 || len(leave) > 0 {
		req := &RecordReq{}
		n := min(len(fetch), maxPerReq)
		req.Keys, fetch = fetch[:n], fetch[n:]
		m := min(len(leave), maxPerReq-n)
		req.Held, leave = leave[:m], leave[m:]
		s.awaiting++
		s.asked = append(s.asked, request{keys: req.Keys, held: req.Held})
		out = append(out, Msg{RecordReq: req})
	}
	return s.pump(out)
}

// scanPending reports whether a Scan is still unanswered.
func (s *Session) scanPending() bool {
	for _, r := range s.asked {
		if r.scan != nil {
			return true
		}
	}
	return false
}

// rescope, when a session ends, re-evaluates the tables whose selection
// depends on other records (Related), which writes can reach in any
// order: a related record that arrived before the record referencing it
// was hidden then. A hidden record whose state is whole (it holds every
// write to it that was skipped here) and that is selected now is shown; a shown record that is
// not selected any more is hidden. Best effort: a failure is logged, and
// the next reconciliation corrects it.
func (s *Session) rescope() {
	sc := s.l.scope()
	if sc.All {
		return
	}
	var related []string
	for _, t := range sc.Tables {
		if len(t.Related) > 0 {
			related = append(related, t.Table)
		}
	}
	if len(related) == 0 {
		return
	}
	scn, lister := s.l.Capabilities().Scan, s.l.Capabilities().Hidden
	if scn == nil || lister == nil {
		return // refused at the handshake (Capabilities.Need)
	}
	ev := relatedEval(sc, scn, s.l.Clock.Physical())
	show, hide := map[RecordKey]bool{}, map[RecordKey]crdt.VV{}
	isRelated := map[string]bool{}
	for _, t := range related {
		isRelated[t] = true
	}
	for _, h := range lister.ListHidden(-1) {
		if !isRelated[h[0]] {
			continue
		}
		rec, err := s.l.Store.GetAny(h[0], h[1])
		if err != nil {
			continue
		}
		if skipped, _ := s.l.hiddenSkipped(h[0], h[1]); !skipped.LessEq(rec.Applied) {
			continue // stale: fetched whole by the next reconciliation
		}
		if rec.Exists() && sc.Selects(h[0], h[1], rec, ev) {
			show[RecordKey{Table: h[0], ID: h[1]}] = true
		}
	}
	for _, table := range related {
		err := eachRecord(scn, table, func(e store.RecordEntry) error {
			if e.Record.Exists() && !sc.Selects(table, e.ID, e.Record, ev) {
				hide[RecordKey{Table: table, ID: e.ID}] = nil
			}
			return nil
		})
		if err != nil {
			s.l.Log.Warn("re-evaluating the scope", "table", table, "error", err)
			return
		}
	}
	if len(show) == 0 && len(hide) == 0 {
		return
	}
	_, err := s.l.Store.ApplyRemoteScoped(s.l.Clock, nil, nil, func(b Batch, _ *store.Result) error {
		for k := range show {
			b.SetHidden(k.Table, k.ID, false, nil)
		}
		for k := range hide {
			b.SetHidden(k.Table, k.ID, true, nil)
		}
		return b.Err()
	})
	if err != nil {
		s.l.Log.Warn("re-evaluating the scope", "error", err)
		return
	}
	s.l.Log.Debug("re-evaluated the related tables of the scope", "shown", len(show), "hidden", len(hide))
}
