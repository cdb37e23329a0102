package live

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/source"
)

// Subscribe subscribes to q (Count and Explain are refused; a query
// error is a *query.Error) with device the device.* attributes its where
// clause reads. Without lastEventID the first event is the current
// result; with one, the subscription resumes after it (see the package
// documentation). A resumption may wait (up to resumeWait) for the fsync
// of writes its view shows; it waits without the engine's mutex, so the
// other subscriptions are served meanwhile.
func (e *Engine) Subscribe(q query.Query, device map[string]string, lastEventID string) (*Subscription, error) {
	if q.Count {
		return nil, &query.Error{Param: "count", Msg: "a live query cannot count"}
	}
	if q.Explain {
		return nil, &query.Error{Param: "explain", Msg: "a live query cannot explain"}
	}
	p, err := query.Prepare(q)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	v, err := e.viewFor(q, device, p)
	if err != nil {
		return nil, err
	}
	s := &Subscription{e: e, v: v, max: e.opts.Queue, ready: make(chan struct{}, 1)}
	if lastEventID == "" {
		v.subs[s] = struct{}{}
		s.push(Event{Type: Result, ID: v.id, Records: v.recs})
		return s, nil
	}
	r, ok := e.resumeFrom(v, lastEventID)
	var evs []Event
	if ok {
		// Replayed without the mutex (it may wait for an fsync); the view
		// stays meanwhile, and may move on: its subscribers get rounds.
		v.pending++
		e.mu.Unlock()
		evs, ok, err = e.replay(v.table, r)
		e.mu.Lock()
		v.pending--
		if e.closed {
			return nil, ErrClosed
		}
		if err != nil {
			e.dropIfIdle(v)
			return nil, err
		}
		// What the view's rounds changed since r.recs.
		evs = append(evs, diff(r.recs, v.recs)...)
	}
	v.subs[s] = struct{}{}
	if !ok || len(evs) > s.max {
		s.push(Event{Type: Reset, ID: v.id, Records: v.recs})
		return s, nil
	}
	if len(evs) > 0 {
		evs[len(evs)-1].ID = v.id
		s.push(evs...)
	}
	return s, nil
}

// viewFor returns the view of q for device, made (its query run now) if
// there is none. Caller holds e.mu.
func (e *Engine) viewFor(q query.Query, device map[string]string, p *query.Prepared) (*view, error) {
	key := viewKey(q, device)
	if v := e.views[key]; v != nil {
		return v, nil
	}
	v := &view{key: key, p: p, table: q.Table, device: device, subs: map[*Subscription]struct{}{}}
	if strings.TrimSpace(q.Where) != "" {
		var err error
		if v.where, err = filter.Cached(q.Where); err != nil {
			return nil, err
		}
		v.timed = v.where.UsesTime()
	}
	src, err := source.Open(e.st)
	if err != nil {
		return nil, err
	}
	visible, scopeVis := e.st.Visible() // after the snapshot: see view.visible
	recs, full, err := e.run(v, src, e.opts.Now())
	src.Close()
	if err != nil {
		return nil, err
	}
	v.setRecs(recs, full)
	v.visible = visible
	v.id = e.id(v.full, visible, scopeVis)
	e.views[key] = v
	if v.timed {
		e.timed++
	}
	return v, nil
}

// resumption is what a resumption replays: the records touched after
// feed entry feed up to upto and after scope change scope, judged
// against recs (the view's result then, which shows no write after
// upto).
type resumption struct {
	feed, upto, scope uint64
	recs              []query.Record
}

// resumeFrom returns what resuming v from id replays, or ok false when
// it must be a reset. Caller holds e.mu.
func (e *Engine) resumeFrom(v *view, id string) (r resumption, ok bool) {
	x, good := parseID(id)
	feed, scope := x.feed, x.scope
	// A view reading the time changes as it passes, touching no record:
	// what it gained or lost since id is not known.
	if !good || !e.durable(x) || x.full || v.full || v.timed || feed > e.pos || scope > e.scopeDone {
		return r, false
	}
	// v.recs may show writes made after e.pos (the snapshot it came from
	// was taken after the feed head was read), some perhaps not durable
	// yet: the replay re-reads the feed up to every write it can show,
	// once durable.
	upto := max(v.visible, feed)
	if upto-feed > e.opts.MaxReplay {
		return r, false
	}
	return resumption{feed: feed, upto: upto, scope: scope, recs: v.recs}, true
}

// replay returns the events that bring a client's result at r's id to
// r.recs: each record of table touched since (feed entries up to r.upto,
// scope changes up to now) as change if in r.recs, remove if not; ok
// false when it must be a reset (the fsync of the entries up to r.upto
// took longer than resumeWait, or scope changes since were dropped from
// the log). It waits for that fsync, and runs without e.mu: r.recs is
// never modified (a round replaces a view's records).
func (e *Engine) replay(table string, r resumption) (evs []Event, ok bool, err error) {
	if e.st.FeedHead() < r.upto {
		if e.testHookResumeWait != nil {
			e.testHookResumeWait()
		}
		deadline := time.NewTimer(resumeWait)
		defer deadline.Stop()
		poll := time.NewTicker(time.Millisecond)
		defer poll.Stop()
		for e.st.FeedHead() < r.upto {
			select {
			case <-e.stop:
				return nil, false, ErrClosed
			case <-deadline.C:
				return nil, false, nil
			case <-poll.C:
			}
		}
	}
	keys, _, lost := e.scopeSince(r.scope)
	if lost {
		return nil, false, nil
	}
	var touched []string
	seen := map[string]bool{}
	touch := func(t, rid string) {
		if t == table && !seen[rid] {
			seen[rid] = true
			touched = append(touched, rid)
		}
	}
feed:
	for after := r.feed; after < r.upto; {
		es, err := e.st.Feed(after, 1000)
		if err != nil {
			return nil, false, err
		}
		if len(es) == 0 {
			break
		}
		for _, fe := range es {
			if fe.Feed > r.upto {
				break feed
			}
			touch(fe.Table, fe.ID)
			after = fe.Feed
		}
	}
	for _, k := range keys {
		touch(k[0], k[1])
	}
	in := make(map[string]*query.Record, len(r.recs))
	for i := range r.recs {
		in[r.recs[i].ID] = &r.recs[i]
	}
	for _, rid := range touched {
		if rec, ok := in[rid]; ok {
			evs = append(evs, Event{Type: Change, Record: rec})
		} else {
			evs = append(evs, Event{Type: Remove, Record: &query.Record{ID: rid}})
		}
	}
	return evs, true, nil
}

// Subscription is one subscriber's queue of events.
type Subscription struct {
	e     *Engine
	v     *view
	max   int
	mu    sync.Mutex
	q     []Event
	last  string // the last id queued
	n     int    // events queued, overflow included
	ended bool   // nothing more is queued
	ready chan struct{}
}

// push queues evs, all or none; when they do not fit, it queues an
// overflow event instead, ends the subscription and returns false.
func (s *Subscription) push(evs ...Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	ok := true
	if len(s.q)+len(evs) > s.max {
		s.q = append(s.q, Event{Type: Overflow, ID: s.last})
		s.ended, ok = true, false
		s.n++
	} else {
		s.q = append(s.q, evs...)
		s.n += len(evs)
		for _, ev := range evs {
			if ev.ID != "" {
				s.last = ev.ID
			}
		}
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return ok
}

// end ends the subscription: Next drains the queue, then returns
// ErrClosed.
func (s *Subscription) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one until ctx ends (its
// error). After an overflow event, or once the subscription or engine is
// closed and the queue drained, it returns ErrClosed.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			ev := s.q[0]
			s.q[0] = Event{}
			s.q = s.q[1:]
			s.mu.Unlock()
			return ev, nil
		}
		ended := s.ended
		s.mu.Unlock()
		if ended {
			return Event{}, ErrClosed
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Len returns how many events are queued.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

// Close ends the subscription and leaves its view.
func (s *Subscription) Close() {
	s.end()
	e := s.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := s.v.subs[s]; ok {
		delete(s.v.subs, s)
		e.dropIfIdle(s.v)
	}
}
