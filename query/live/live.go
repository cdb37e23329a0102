// Package live keeps queries (package query) live over a store: a
// subscription to a query receives the query's current result, then an
// event for each record that enters the result (add), changes within it
// (change) or leaves it (remove), whatever made the change: a local
// write, a remote write applied by sync, a merge, a delete, a scope
// change (a record hidden, shown again or purged) or a tombstone
// collection.
//
// How changes are learnt: an Engine reads the store's change feed
// (store.Feed; every local write, remote write and merge has an entry)
// and the store's scope signal (store.WatchScope: hides, shows, purges
// and collections, which have no feed entry). It reads them when woken
// (Options.Wake, the node's feed notifier, or Engine.Notify) and at
// least every Options.Poll. One reader serves every subscription.
//
// Views: subscriptions to the same query (table, where, order, limit,
// cursor, fields and device attributes) share a view, which holds the
// result its subscribers have. When a round of changes touches a record
// of a view's table that is in the view's result or matches its where
// clause now (any other touched record cannot change the result), the
// view judges the touched records alone on the round's snapshot
// (query.Prepared.Judge: in the result or not, and where in its order)
// and sends the difference with the result it held to each subscriber.
// It runs its query once on the snapshot instead when judging cannot
// give the result a run would: a record leaves a full window (the next
// match is not known), the round touched too many records to list or
// lost scope changes, or the where clause reads the time. The result is
// the query's page: at most limit records (query.DefaultLimit when 0)
// in the query's order, after the cursor if any. So in a full window a
// record that leaves lets the next one in (remove, then add), and one
// that enters ahead of the last pushes the last out (add, then remove).
// Events carry records, not positions: a client orders its result by
// the query's order. A view whose where clause reads now or today also
// runs its query every Options.TimeStep (one second; the time read from
// Options.Now), touched or not, so a record enters or leaves such a
// result within about a TimeStep of the time it crosses (a record due
// at 10:00:00 enters a "due < now" view by about 10:00:01).
//
// Ids: the last event of each round (and every result, reset and
// overflow) carries an id: the store's boot (store.Boots: a random number
// per Open of the store), the feed position the round read up to, the
// last feed position the result may show, the same two scope-change
// positions (store.ScopeHead: scope changes are numbered durably, with
// the batches that make them; store.Visible gives both bounds after the
// snapshot), and whether the window was full. Events inside a round carry no id, as a server-sent
// event stream keeps the last one given. The positions are the store's,
// so an id resumes on any engine of the store, after a restart too: an
// id of an earlier boot is good when the boot after it started at or
// after its positions (always after a clean stop; after a crash, unless
// the crash took back a write or scope change the result showed, whose
// positions were then numbered again).
// Resuming with an id N (Subscribe's lastEventID) re-evaluates every
// record of the table touched after N (feed entries and scope changes)
// and sends it as change if it is in the result now, remove if not;
// replayed onto the client's result at N, add and change being upserts
// and remove a delete of the record if present, this gives the current
// result. The client's result at N is not known to the engine, so a
// resumption sends the whole result again as a reset event (which
// replaces the client's result) instead when an incremental one could be
// wrong or cost more: the id is malformed, of another store or of a boot
// it cannot vouch for (see above), scope changes since it are not kept
// (those before the engine started: a scope change between the id and a
// restart; or more than Options.ScopeLog since), the window was full at
// N or is full when the resumption starts (records untouched after N may
// have entered or left it), the where clause reads the time (records
// enter and leave as it passes, untouched), more than Options.MaxReplay
// feed entries were made since N, its events would not fit the
// subscriber's queue, or the writes its view shows took more than five
// seconds to become durable. A resumption replays the feed up to the
// writes its view's result shows, once durable: it waits for their fsync
// without holding the engine, whose rounds go on for every other
// subscription (and for its view, whose changes meanwhile follow the
// replay's events).
//
// Bounds: a subscriber's queue holds at most Options.Queue events (a
// result or reset counts as one); a round whose events do not fit ends
// the subscription with an overflow event, whose id is the last one
// queued before it: resume from it (Last-Event-ID). A slow subscriber
// thus holds neither the engine nor the other subscribers.
package live

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/source"
	"github.com/replicad/replicad/store"
)

// Event types.
const (
	Result   = "result"   // the current result (Records), first event of a subscription
	Reset    = "reset"    // the current result (Records), replacing the client's
	Add      = "add"      // Record entered the result
	Change   = "change"   // Record, in the result, changed (or, resuming, is in it)
	Remove   = "remove"   // the record Record.ID left the result (if present)
	Overflow = "overflow" // the subscriber fell behind: resume from ID
)

// Event is one event of a subscription. Its records are shared between
// subscribers: do not modify them.
type Event struct {
	Type string
	// ID resumes after this event ("" inside a round; see the package
	// documentation).
	ID      string
	Record  *query.Record  // add, change, remove (ID only)
	Records []query.Record // result, reset
}

// Options configure an Engine.
type Options struct {
	// Wake is the node's feed notifier: a value wakes the engine to read
	// the feed (nil: only Notify and Poll do).
	Wake <-chan struct{}
	// Poll is the longest time between two reads (0: one second).
	Poll time.Duration
	// Queue bounds each subscriber's queue of events (0: 1024).
	Queue int
	// MaxReplay bounds the feed entries a resumption re-reads (0:
	// 100,000); a resumption from further back is a reset.
	MaxReplay uint64
	// ScopeLog bounds the scope changes kept for resumptions (0: 65,536).
	ScopeLog int
	// Now is the time where clauses read (nil: time.Now).
	Now func() time.Time
	// TimeStep: a view whose where clause reads now or today runs its
	// query again once this much time (by Now) has passed since it last
	// did so for the time, touched or not (0: one second). The engine
	// wakes at least this often (real time) besides Poll.
	TimeStep time.Duration
}

// resumeWait bounds how long a resumption waits for the fsync of writes
// its view already shows (then it is a reset).
const resumeWait = 5 * time.Second

// ErrClosed is Next's error once a subscription ended (closed, engine
// closed, or after its overflow event).
var ErrClosed = errors.New("live: subscription closed")

// Engine runs the live queries of one store. Close it.
type Engine struct {
	st    *store.Store
	opts  Options
	boots []store.Boot // the store's boots; the last is its current one

	mu        sync.Mutex // rounds, views, subscriptions
	pos       uint64     // feed position read up to
	scopeDone uint64     // scope-signal position read up to
	views     map[string]*view
	timed     int       // views whose where clause reads the time
	nextTick  time.Time // when (by Options.Now) the timed views run again
	closed    bool
	err       error // the last round's error

	smu       sync.Mutex // scope log
	scopeLog  [][2]string
	scopeBase uint64 // scope position of scopeLog[0] minus one
	unwatch   func()

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	// testHookResumeWait, if set, is called when a resumption starts
	// waiting for an fsync.
	testHookResumeWait func()
}

// view is the result a query's subscribers hold.
type view struct {
	key    string
	p      *query.Prepared
	where  *filter.Expr // nil: every record
	table  string
	device map[string]string
	recs   []query.Record
	in     map[string]bool // the ids of recs
	full   bool            // the window is full (the query has a next page)
	id     string          // the id of the state recs is
	subs   map[*Subscription]struct{}
	runs   int // times its query ran
	// updates counts the rounds that judged only the touched records
	// (update) instead of running the query.
	updates int
	// visible is the store's FeedVisible when the snapshot recs came
	// from was taken: recs show no write with a later feed entry.
	visible uint64
	timed   bool // the where clause reads now or today
	// pending counts resumptions that wait to join (the view is kept).
	pending int
}

// New starts an engine on st, at the current end of its feed.
func New(st *store.Store, opts Options) *Engine {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	if opts.MaxReplay == 0 {
		opts.MaxReplay = 100_000
	}
	if opts.ScopeLog <= 0 {
		opts.ScopeLog = 65_536
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TimeStep <= 0 {
		opts.TimeStep = time.Second
	}
	e := &Engine{st: st, opts: opts, boots: st.Boots(), views: map[string]*view{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var head uint64
	e.unwatch, head = st.WatchScope(e.noteScope)
	e.scopeBase, e.scopeDone = head, head
	e.pos = st.FeedHead()
	go e.loop()
	return e
}

// noteScope logs the scope changes of a committed batch, which end at
// scope position end (called under the store's write mutex: no store
// calls, no waiting on e.mu).
func (e *Engine) noteScope(keys [][2]string, end uint64) {
	e.smu.Lock()
	if start := end - uint64(len(keys)); start != e.scopeBase+uint64(len(e.scopeLog)) {
		// Changes the engine was not told of: those before start are lost.
		e.scopeLog, e.scopeBase = nil, start
	}
	e.scopeLog = append(e.scopeLog, keys...)
	if over := len(e.scopeLog) - e.opts.ScopeLog; over > 0 {
		e.scopeLog = append(e.scopeLog[:0:0], e.scopeLog[over:]...)
		e.scopeBase += uint64(over)
	}
	e.smu.Unlock()
	e.Notify()
}

// scopeSince returns the scope changes after position after, the
// position they end at, and whether some were dropped from the log.
func (e *Engine) scopeSince(after uint64) (keys [][2]string, end uint64, lost bool) {
	e.smu.Lock()
	defer e.smu.Unlock()
	end = e.scopeBase + uint64(len(e.scopeLog))
	if after < e.scopeBase {
		return append([][2]string(nil), e.scopeLog...), end, true
	}
	return append([][2]string(nil), e.scopeLog[after-e.scopeBase:]...), end, false
}

// Notify wakes the engine to read the feed now.
func (e *Engine) Notify() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Err returns the error of the last round (nil if it succeeded).
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Close stops the engine and ends its subscriptions (Next returns
// ErrClosed once their queues are drained).
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for _, v := range e.views {
		for s := range v.subs {
			s.end()
		}
	}
	e.views, e.timed = map[string]*view{}, 0
	e.mu.Unlock()
	e.unwatch()
	close(e.stop)
	<-e.done
}

func (e *Engine) loop() {
	defer close(e.done)
	t := time.NewTicker(min(e.opts.Poll, e.opts.TimeStep))
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-e.kick:
		case <-e.opts.Wake:
		case <-t.C:
		}
		e.round()
	}
}

// Sync runs a round now: when it returns, every change committed and
// durable before the call has been sent to the subscribers' queues.
func (e *Engine) Sync() error {
	e.round()
	return e.Err()
}

// round reads the feed and the scope signal up to now and refreshes the
// views they touched.
func (e *Engine) round() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.err = e.roundLocked()
}

func (e *Engine) roundLocked() error {
	head := e.st.FeedHead()
	keys, sEnd, lost := e.scopeSince(e.scopeDone)
	now := e.opts.Now()
	// The views whose where clause reads the time run every TimeStep.
	tick := e.timed > 0 && !now.Before(e.nextTick)
	if head == e.pos && sEnd == e.scopeDone && !tick {
		return nil
	}
	if tick {
		e.nextTick = now.Add(e.opts.TimeStep)
	}
	// The records touched, by table (nil: too many to list, or some
	// dropped from the scope log: every view of the table runs).
	touched := map[string]map[string]bool{}
	n := 0
	touch := func(table, id string) {
		ids, ok := touched[table]
		if !ok {
			ids = map[string]bool{}
			touched[table] = ids
		}
		if ids != nil && !ids[id] {
			ids[id] = true
			if n++; n > maxTouched {
				touched[table] = nil
			}
		}
	}
	for _, k := range keys {
		touch(k[0], k[1])
	}
feed:
	for after := e.pos; after < head; {
		es, err := e.st.Feed(after, 1000)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		for _, fe := range es {
			if fe.Feed > head {
				break feed
			}
			touch(fe.Table, fe.ID)
			after = fe.Feed
		}
	}
	e.pos, e.scopeDone = head, sEnd
	if len(e.views) == 0 {
		return nil
	}
	src, err := source.Open(e.st)
	if err != nil {
		return err
	}
	defer src.Close()
	visible, scopeVis := e.st.Visible() // after the snapshot: see view.visible
	type got struct {
		rec *crdt.Record
		ok  bool
	}
	recs := map[[2]string]got{} // records read this round
	get := func(table, id string) (*crdt.Record, bool, error) {
		if g, ok := recs[[2]string{table, id}]; ok {
			return g.rec, g.ok, nil
		}
		rec, ok, err := src.Get(table, id)
		if err != nil {
			return nil, false, err
		}
		recs[[2]string{table, id}] = got{rec, ok}
		return rec, ok, nil
	}
	fenv := filter.Env{NowMs: now.UnixMilli()}
	for _, v := range e.views {
		if tick && v.timed {
			if err := e.refresh(v, src, now, visible, scopeVis); err != nil {
				return err
			}
			continue
		}
		ids, ok := touched[v.table]
		if !lost && !ok {
			continue
		}
		// A touched record can change the result only if it is in it or
		// matches now; otherwise the view need not run.
		relevant := lost || ids == nil
		for id := range ids {
			if relevant {
				break
			}
			if v.in[id] {
				relevant = true
				break
			}
			rec, ok, err := get(v.table, id)
			if err != nil {
				return err
			}
			fenv.Device = v.device
			relevant = ok && rec.Exists() && (v.where == nil || v.where.Match(id, rec, fenv))
		}
		if !relevant {
			continue
		}
		if !lost && ids != nil && !v.timed {
			done, err := e.update(v, ids, get, now, visible, scopeVis)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		if err := e.refresh(v, src, now, visible, scopeVis); err != nil {
			return err
		}
	}
	return nil
}

// update brings v's result up to date by judging only the records
// touched (ids, read through get on the round's snapshot) instead of
// running its query (query.Prepared.Judge), when that gives the result
// a run would: done is false when it cannot, and the view must run. A
// window that is not full holds every match, so the matches now are its
// records untouched and the touched ones that match, in the query's
// order, cut at the limit (then full). A full window holds the first
// matches only: a touched record entering ahead of its last record
// takes its place (the last goes to the next page), one that changes
// within it stays; but one that leaves it, or moves past its last
// record, lets in a record not known here: the view runs. A view whose
// where clause reads the time always runs (untouched records may cross
// it).
func (e *Engine) update(v *view, ids map[string]bool, get func(table, id string) (*crdt.Record, bool, error), now time.Time, visible, scopeVis uint64) (done bool, err error) {
	if !query.Ordered(v.recs) {
		return false, nil
	}
	var last query.Record
	if v.full {
		if len(v.recs) == 0 {
			return false, nil
		}
		last = v.recs[len(v.recs)-1]
	}
	env := query.Env{NowMs: now.UnixMilli(), Device: v.device}
	recs := make([]query.Record, 0, len(v.recs)+len(ids))
	for _, r := range v.recs {
		if !ids[r.ID] {
			recs = append(recs, r)
		}
	}
	for id := range ids {
		rec, ok, err := get(v.table, id)
		if err != nil {
			return false, err
		}
		var r query.Record
		in := false
		if ok {
			r, in = v.p.Judge(id, rec, env)
		}
		if v.full {
			beyond := in && v.p.Compare(r, last) > 0
			if v.in[id] && (!in || beyond) {
				return false, nil // it leaves the window: the next match is not known here
			}
			if beyond {
				continue // on a later page
			}
		}
		if in {
			r.State = nil // a view keeps the projected values only
			recs = append(recs, r)
		}
	}
	v.p.Sort(recs)
	full := v.full
	if n := v.p.Limit(); len(recs) > n {
		recs, full = recs[:n], true
	}
	v.updates++
	e.publish(v, recs, full, visible, scopeVis)
	return true, nil
}

// maxTouched bounds the records a round lists; past it, every view of a
// touched table runs its query.
const maxTouched = 10_000

// run runs a view's query at time now.
func (e *Engine) run(v *view, src query.Source, now time.Time) ([]query.Record, bool, error) {
	v.runs++
	res, err := v.p.Run(src, query.Env{NowMs: now.UnixMilli(), Device: v.device})
	if err != nil {
		return nil, false, err
	}
	for i := range res.Records {
		res.Records[i].State = nil // a view keeps the projected values only
	}
	return res.Records, res.Next != "", nil
}

// refresh runs v's query at time now on src, whose snapshot shows no
// write after feed entry visible, and sends the difference to its
// subscribers.
func (e *Engine) refresh(v *view, src query.Source, now time.Time, visible, scopeVis uint64) error {
	recs, full, err := e.run(v, src, now)
	if err != nil {
		return err
	}
	e.publish(v, recs, full, visible, scopeVis)
	return nil
}

// publish makes recs (full: the query has a next page) v's result, on a
// snapshot that shows no write after feed entry visible and no scope
// change after scopeVis, and sends the difference to its subscribers.
func (e *Engine) publish(v *view, recs []query.Record, full bool, visible, scopeVis uint64) {
	evs := diff(v.recs, recs)
	v.setRecs(recs, full)
	v.visible = visible
	v.id = e.id(full, visible, scopeVis)
	if len(evs) == 0 {
		return
	}
	evs[len(evs)-1].ID = v.id
	for s := range v.subs {
		if !s.push(evs...) {
			delete(v.subs, s)
		}
	}
	e.dropIfIdle(v)
}

func (v *view) setRecs(recs []query.Record, full bool) {
	v.recs, v.full = recs, full
	v.in = make(map[string]bool, len(recs))
	for i := range recs {
		v.in[recs[i].ID] = true
	}
}

func (e *Engine) dropIfIdle(v *view) {
	if len(v.subs) == 0 && v.pending == 0 && e.views[v.key] == v {
		delete(e.views, v.key)
		if v.timed {
			e.timed--
		}
	}
}

// diff returns the events that turn old into cur: removes, then adds and
// changes in cur's order.
func diff(old, cur []query.Record) []Event {
	was := make(map[string]*query.Record, len(old))
	for i := range old {
		was[old[i].ID] = &old[i]
	}
	is := make(map[string]bool, len(cur))
	var evs []Event
	for i := range cur {
		is[cur[i].ID] = true
	}
	for i := range old {
		if !is[old[i].ID] {
			evs = append(evs, Event{Type: Remove, Record: &query.Record{ID: old[i].ID}})
		}
	}
	for i := range cur {
		r := &cur[i]
		switch o, ok := was[r.ID]; {
		case !ok:
			evs = append(evs, Event{Type: Add, Record: r})
		case !sameFields(o, r):
			evs = append(evs, Event{Type: Change, Record: r})
		}
	}
	return evs
}

func sameFields(a, b *query.Record) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for k, v := range a.Fields {
		w, ok := b.Fields[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// id encodes the engine's position for a result whose snapshot shows no
// write after feed entry visible and no scope change after scopeVis:
// the store's boot, the feed position read up to, visible, the scope
// position read up to, scopeVis, whether the window is full.
func (e *Engine) id(full bool, visible, scopeVis uint64) string {
	f := 0
	if full {
		f = 1
	}
	return fmt.Sprintf("%x.%d.%d.%d.%d.%d", e.boots[len(e.boots)-1].ID, e.pos, max(visible, e.pos), e.scopeDone, max(scopeVis, e.scopeDone), f)
}

// eventID is an id's content.
type eventID struct {
	boot, feed, visible, scope, scopeVisible uint64
	full                                     bool
}

// parseID reads an id; ok is false when it is malformed.
func parseID(s string) (id eventID, ok bool) {
	p := strings.Split(s, ".")
	if len(p) != 6 || (p[5] != "0" && p[5] != "1") {
		return id, false
	}
	var n [5]uint64
	for i := range n {
		base := 10
		if i == 0 {
			base = 16
		}
		var err error
		if n[i], err = strconv.ParseUint(p[i], base, 64); err != nil {
			return id, false
		}
	}
	id = eventID{boot: n[0], feed: n[1], visible: n[2], scope: n[3], scopeVisible: n[4], full: p[5] == "1"}
	return id, id.feed <= id.visible && id.scope <= id.scopeVisible
}

// durable reports whether what id's result shows is still this store's
// (all of it for an id of the current boot): an id of an earlier boot
// shows writes and scope changes up to its visible positions,
// which a crash may have taken back (and numbered again) unless the next
// boot started at or after them.
func (e *Engine) durable(id eventID) bool {
	for i, b := range e.boots {
		if b.ID != id.boot {
			continue
		}
		if i == len(e.boots)-1 {
			return true
		}
		next := e.boots[i+1]
		return id.visible <= next.Feed && id.scopeVisible <= next.Scope
	}
	return false
}

// viewKey names what decides a view's result.
func viewKey(q query.Query, device map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %d %q %q", q.Table, q.Where, q.Order, q.Limit, q.Cursor, q.Fields)
	ks := make([]string, 0, len(device))
	for k := range device {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(&b, " %q=%q", k, device[k])
	}
	return b.String()
}

// ExactID reports whether id names exactly one result of its query: its
// snapshot showed exactly the writes and scope changes the engine had
// read (the feed and scope positions read equal the last ones it can
// show). Two results of one query (not reading the time) with the same
// exact id are the same; with the same inexact id they may differ. False
// for a malformed id.
func ExactID(id string) bool {
	p, ok := parseID(id)
	return ok && p.feed == p.visible && p.scope == p.scopeVisible
}
