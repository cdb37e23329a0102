package replication

import (
	"sort"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/store"
)

// maxCachedFilters bounds the filters kept compiled, process-wide (the
// cache is package filter's, shared with queries and views).
const maxCachedFilters = filter.MaxCached

// filterCache is the process-wide cache of compiled filters (filter.Cached):
// the scopes in force and those of the peers in session. Validating a
// scope (a Hello's, before the handshake is accepted) does not fill it:
// nothing of a refused handshake is kept.
var filterCache filterCacheView

type filterCacheView struct{}

func (filterCacheView) len() int { return filter.CachedCount() }

func compiled(src string) (*filter.Expr, error) { return filter.Cached(src) }

// match evaluates a table's filter on rec.
func (s Scope) match(src, id string, rec *crdt.Record, ev *Eval) bool {
	x, err := compiled(src)
	if err != nil {
		return false
	}
	env := filter.Env{}
	if ev != nil {
		env.NowMs = ev.NowMs
	} else {
		env.NowMs = time.Now().UnixMilli()
	}
	if len(s.Device) > 0 {
		env.Device = make(map[string]string, len(s.Device))
		for _, a := range s.Device {
			env.Device[a.Name] = a.Value
		}
	}
	return x.Match(id, rec, env)
}

// UsesTime reports whether a filter of the table reads the time (or a
// table it relates to does): which records it selects changes as time
// passes.
func (s Scope) UsesTime(table string) bool {
	t := s.table(table)
	if t == nil {
		return false
	}
	if t.Filter != "" {
		if x, err := compiled(t.Filter); err == nil && x.UsesTime() {
			return true
		}
	}
	for _, r := range t.Related {
		if r.Table != table && s.UsesTime(r.Table) {
			return true
		}
	}
	return false
}

// FilteredTables returns the tables the scope selects only in part.
func (s Scope) FilteredTables() []string {
	var out []string
	for i := range s.Tables {
		if s.Tables[i].filtered() {
			out = append(out, s.Tables[i].Table)
		}
	}
	return out
}

// Table returns the scope of one table, if listed.
func (s Scope) Table(name string) (TableScope, bool) {
	if t := s.table(name); t != nil {
		return *t, true
	}
	return TableScope{}, false
}

// scanner lists a table's records (RecordScanner's Scan).
type scanner interface {
	Scan(table, after string, limit int) ([]store.RecordEntry, string, error)
}

// relatedEval builds an Eval for sc at nowMs on st: the related ids are
// computed on first use, once per (table, field), by scanning the
// referencing table's selected records.
func relatedEval(sc Scope, scn scanner, nowMs int64) *Eval {
	ev := &Eval{NowMs: nowMs}
	sets := map[[2]string]map[string]bool{}
	ev.Related = func(table, field string) map[string]bool {
		k := [2]string{table, field}
		if ids, ok := sets[k]; ok {
			return ids
		}
		sets[k] = nil // a loop (Validate refuses them) relates nothing
		ids := map[string]bool{}
		if scn != nil {
			collectRefs(scn, table, field, func(id string, rec *crdt.Record) bool {
				return rec.Exists() && sc.Selects(table, id, rec, ev)
			}, ids)
		}
		sets[k] = ids
		return ids
	}
	return ev
}

// dynState is a Local's mutable scope state: the scope in force (a hub
// may assign a new one), a cached Eval, and when each filtered table was
// last reconciled with a hub.
type dynState struct {
	mu       sync.Mutex
	scope    *Scope
	ev       *Eval
	evAt     int64
	evScope  *Scope
	evHead   uint64
	lastScan map[string]int64
	force    bool
	rescan   map[string]bool // tables to list anew (readChange)
}

func (l *Local) state() *dynState {
	if l.dyn == nil {
		l.dyn = &dynState{}
	}
	return l.dyn
}

// scope returns the scope in force.
func (l *Local) scope() Scope {
	d := l.state()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.scope != nil {
		return *d.scope
	}
	return l.Scope
}

// CurrentScope returns the scope in force (Scope, or the one a hub
// assigned since).
func (l *Local) CurrentScope() Scope { return l.scope() }

// SetScope puts sc in force: from the next decision on, records are
// selected by it; the next session with a hub reconciles every filtered
// table (what newly matches arrives, what no longer matches leaves).
func (l *Local) SetScope(sc Scope) {
	d := l.state()
	d.mu.Lock()
	d.scope = &sc
	d.ev = nil
	d.force = true
	d.mu.Unlock()
}

// ForceReconcile makes the next session with a hub reconcile every
// filtered table, whatever their intervals.
func (l *Local) ForceReconcile() {
	d := l.state()
	d.mu.Lock()
	d.force = true
	d.mu.Unlock()
}

// addRescan makes the next reconciliation with a hub list table anew.
func (l *Local) addRescan(table string) {
	d := l.state()
	d.mu.Lock()
	if d.rescan == nil {
		d.rescan = map[string]bool{}
	}
	d.rescan[table] = true
	d.mu.Unlock()
}

// rescans returns the tables to list anew, sorted.
func (l *Local) rescans() []string {
	d := l.state()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.rescan))
	for t := range d.rescan {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// rescanned is told the tables a listing answered.
func (l *Local) rescanned(tables []string) {
	d := l.state()
	d.mu.Lock()
	for _, t := range tables {
		delete(d.rescan, t)
	}
	d.mu.Unlock()
}

// evalTTL bounds how long a Local reuses the related ids it computed.
const evalTTL = 2000 // ms

// eval returns an Eval of the local scope at the local clock.
func (l *Local) eval() *Eval {
	now := l.Clock.Physical()
	d := l.state()
	d.mu.Lock()
	defer d.mu.Unlock()
	sc := l.Scope
	if d.scope != nil {
		sc = *d.scope
	}
	// Related ids depend on the records held: recomputed after any change
	// here, and at most evalTTL apart for the time.
	var head uint64
	if f := l.Capabilities().Feed; f != nil {
		head = f.FeedHead()
	}
	if d.ev != nil && d.evScope != nil && now-d.evAt < evalTTL && now >= d.evAt && head == d.evHead {
		return d.ev
	}
	d.ev, d.evAt, d.evScope, d.evHead = relatedEval(sc, l.scanner(), now), now, &sc, head
	return d.ev
}

// dueScans returns the filtered tables of sc to reconcile with a hub now
// (their interval elapsed, or forced), highest priority first, and marks
// them done.
func (l *Local) dueScans(sc Scope) []string {
	now := l.Clock.Physical()
	d := l.state()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastScan == nil {
		d.lastScan = map[string]int64{}
	}
	var due []TableScope
	for _, t := range sc.Tables {
		if !t.filtered() {
			continue
		}
		last, seen := d.lastScan[t.Table]
		if d.force || !seen || now-last >= t.IntervalMs {
			due = append(due, t)
		}
	}
	d.force = false
	sort.SliceStable(due, func(i, j int) bool { return due[i].Priority > due[j].Priority })
	out := make([]string, len(due))
	for i, t := range due {
		out[i] = t.Table
		d.lastScan[t.Table] = now
	}
	return out
}

// collectRefs adds to ids the values of field (a string, or a list of
// strings) in the records of table that sel selects.
func collectRefs(sc scanner, table, field string, sel func(id string, rec *crdt.Record) bool, ids map[string]bool) {
	_ = eachRecord(sc, table, func(e store.RecordEntry) error {
		if !sel(e.ID, e.Record) {
			return nil
		}
		v, ok := e.Record.Get(field)
		if !ok {
			return nil
		}
		x, err := v.Decode()
		if err != nil {
			return nil
		}
		switch t := x.(type) {
		case string:
			ids[t] = true
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok {
					ids[s] = true
				}
			}
		}
		return nil
	})
}

// eachRecord calls fn for every record of table that sc shows, in pages.
func eachRecord(sc scanner, table string, fn func(store.RecordEntry) error) error {
	after := ""
	for {
		page, next, err := sc.Scan(table, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// NewEval returns an Eval of sc at nowMs over st's records (related ids
// computed once, on first use): for callers outside a session, such as a
// hub previewing a profile.
func NewEval(sc Scope, st Store, nowMs int64) *Eval {
	var scn scanner
	if c := CapabilitiesOf(st).Scan; c != nil {
		scn = c
	}
	return relatedEval(sc, scn, nowMs)
}

// scanner returns the store's Scan, or nil (a nil RecordScanner in a
// scanner interface would not be nil).
func (l *Local) scanner() scanner {
	if c := l.Capabilities().Scan; c != nil {
		return c
	}
	return nil
}
