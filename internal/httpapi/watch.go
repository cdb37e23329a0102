package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/query/live"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/store"
)

// Live queries and views (watch=true). With Accept: text/event-stream the
// answer is a stream of server-sent events, each with the id of its
// api.WatchEvent (omitted when ""), its type as the event name and the
// api.WatchEvent as data: first "result", then "add", "change" and
// "remove"; a Last-Event-ID header (or last_event_id) resumes after an
// event; a comment is sent every 15 s so that idle connections stay up;
// a client too slow to keep up gets an "overflow" event and the stream
// ends. Without it, a long poll: the first call (no last_event_id)
// answers the result at once, later ones (last_event_id=ID) the events
// after ID, waiting up to timeout (30s by default) for the first, as an
// api.WatchPage. At most the bound given NewQueries watches are served at
// once (503 beyond it). A restricted reader's watch shows the records as
// it may read them; it resumes after an id it was given as a watch does
// while the node knows which records it holds at that id (watchheld.go),
// else its first event after the id is a "reset" (a long poll's once a
// change came).

// errTooManyWatches is the 503 of a watch beyond the bound.
func (qs *Queries) errTooManyWatches() error {
	return Errorf(http.StatusServiceUnavailable, "too many live queries in progress (at most %d on this node, --max-live-queries); retry shortly", cap(qs.streams))
}

// liveQuery is the replica.Query req keeps live.
func (req *request) liveQuery(device map[string]string) replica.Query {
	return replica.Query{Table: req.q.Table, Where: req.q.Where, Order: req.q.Order, Limit: req.q.Limit,
		Cursor: req.q.Cursor, Fields: req.q.Fields, Device: device}
}

// watch serves req live on w: an event stream or a long poll.
func (qs *Queries) watch(w http.ResponseWriter, r *http.Request, req *request) error {
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	last := r.URL.Query().Get("last_event_id")
	if h := r.Header.Get("Last-Event-ID"); sse && h != "" && last == "" {
		last = h
	}
	timeout := DefaultPollTimeout
	if s := r.URL.Query().Get("timeout"); s != "" {
		if sse {
			return Errorf(http.StatusBadRequest, "timeout=%q: an event stream has no timeout (it is for the long poll)", s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return Errorf(http.StatusBadRequest, "timeout=%q: want a duration such as 30s", s)
		}
		timeout = min(d, MaxPollTimeout)
	}
	select {
	case <-qs.done:
		return Errorf(http.StatusServiceUnavailable, "the node is shutting down")
	default:
	}
	select {
	case qs.streams <- struct{}{}:
		defer func() { <-qs.streams }()
	default:
		return qs.errTooManyWatches()
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(doneContext{qs.done}, cancel)
	defer stop()

	lw := &liveWriter{qs: qs, req: req}
	lq := req.liveQuery(qs.Core.DeviceAttrs())
	from := last // the engine's id
	if req.reader != nil {
		lw.key, lw.token = heldKey(req.reader, lq), newHeldToken()
		var token string
		from, token = splitHeldID(last)
		if held, ok := qs.held.get(token, lw.key, from); ok {
			// It holds held at from: the replayed events are narrowed
			// as the live ones are.
			lw.held, lw.shared = held, true
		} else if last != "" {
			// Which records it holds is not known: a remove could name
			// a record it may not see. It starts again, with a reset; a
			// long poll first waits for a change since last.
			if !sse {
				changed, err := qs.changedSince(ctx, r, req, lq, from, timeout)
				if err != nil || !changed {
					if err == nil {
						WriteJSON(w, http.StatusOK, &api.WatchPage{Events: []api.WatchEvent{}, LastEventID: last})
					}
					return err
				}
			}
			from, lw.reset = "", true
		}
		lw.from = from
	}
	ch, err := qs.Core.WatchFrom(ctx, lq, from)
	if err != nil {
		return watchError(err)
	}
	if sse {
		return qs.stream(ctx, w, ch, lw)
	}
	page, err := qs.poll(ctx, r, ch, lw, last, from, timeout)
	if err != nil {
		return err
	}
	if lw.token != "" && lw.from != "" && (len(page.Events) > 0 || page.LastEventID != last) {
		// The set it holds once it applied page.
		qs.held.put(lw.token, lw.key, lw.from, lw.share())
		page.LastEventID = lw.from + "~" + lw.token
	}
	WriteJSON(w, http.StatusOK, page)
	return nil
}

// changedSince waits up to timeout for an event of q after last: false
// when none came.
func (qs *Queries) changedSince(ctx context.Context, r *http.Request, req *request, q replica.Query, last string, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch, err := qs.Core.WatchFrom(ctx, q, last)
	if err != nil {
		return false, watchError(err)
	}
	for ev := range ch {
		if !req.unchanged(ev, last) {
			return true, nil
		}
	}
	return false, r.Context().Err()
}

// unchanged reports whether ev, the first event of a watch resumed after
// last, is a reset to the very result the client held at last: the
// live engine resets a full window however little changed, and the
// result at an exact id is that id's (live.ExactID; the where clause
// does not read the time). A long poll waits on instead of answering
// it, which would start the client's next poll at once, and the next.
// A result at an inexact id may show writes the other did not (its
// snapshot was taken after the engine's read): it is answered.
func (req *request) unchanged(ev replica.Event, last string) bool {
	if last == "" || ev.Type != "reset" || ev.ID != last || !live.ExactID(last) {
		return false
	}
	x, err := filter.Cached(req.q.Where)
	return strings.TrimSpace(req.q.Where) == "" || err == nil && !x.UsesTime()
}

// watchError maps a WatchFrom error to its answer.
func watchError(err error) error {
	switch {
	case errors.Is(err, replica.ErrInvalid):
		return Errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), replica.ErrInvalid.Error()+": "))
	case errors.Is(err, replica.ErrClosed):
		return ErrResetting
	}
	return err
}

// doneContext is a context done when done is closed.
type doneContext struct{ done <-chan struct{} }

func (doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d doneContext) Done() <-chan struct{}     { return d.done }
func (d doneContext) Err() error {
	select {
	case <-d.done:
		return context.Canceled
	default:
		return nil
	}
}
func (doneContext) Value(any) any { return nil }

// stream writes ch's events as server-sent events until the client
// goes, the watch ends (overflow, the replica closed) or Close.
func (qs *Queries) stream(ctx context.Context, w http.ResponseWriter, ch <-chan replica.Event, lw *liveWriter) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return Errorf(http.StatusNotAcceptable, "streaming is not supported on this connection")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": replicad live query of %s\n\n", lw.req.q.Table)
	fl.Flush()
	heartbeat := time.NewTicker(qs.heartbeat)
	defer heartbeat.Stop()
	var round []api.WatchEvent // a restricted reader's, up to the round's id
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			evs, err := lw.events(ev)
			if err != nil {
				fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
				fl.Flush()
				return nil
			}
			if lw.token != "" {
				// A restricted reader's round is written whole, its id on
				// its last event the reader may know of (the engine's may
				// be about a record it may not), and its held set kept
				// before (it may resume from the id at once). A round with
				// none leaves it where its last id is.
				round = append(round, evs...)
				if ev.ID == "" {
					continue
				}
				evs, round = round, nil
				if len(evs) == 0 {
					continue
				}
				evs[len(evs)-1].ID = lw.outID(ev.ID)
				qs.held.put(lw.token, lw.key, ev.ID, lw.share())
			}
			for _, e := range evs {
				b, _ := json.Marshal(e)
				if e.ID != "" {
					fmt.Fprintf(w, "id: %s\n", e.ID)
				}
				if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b); err != nil {
					return nil // the client is gone (or stopped reading)
				}
			}
			fl.Flush()
			if ev.Type == "overflow" {
				return nil
			}
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-ctx.Done():
			return nil
		}
	}
}

// poll answers one long poll: the events ch gives within timeout (all
// that come at once after the first), as an api.WatchPage; from is the
// engine's id in last.
func (qs *Queries) poll(ctx context.Context, r *http.Request, ch <-chan replica.Event, lw *liveWriter, last, from string, timeout time.Duration) (*api.WatchPage, error) {
	page := &api.WatchPage{Events: []api.WatchEvent{}, LastEventID: last}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	roundOpen := false // an event without id came: its round's last is near
	for {
		var ev replica.Event
		var ok bool
		if len(page.Events) == 0 || roundOpen {
			select {
			case ev, ok = <-ch:
			case <-deadline.C:
				return page, nil
			case <-ctx.Done():
				if err := r.Context().Err(); err != nil {
					return nil, err
				}
				return page, nil // shutting down: what there is
			}
		} else {
			select {
			case ev, ok = <-ch:
			default:
				return page, nil
			}
		}
		if !ok {
			if len(page.Events) == 0 && ctx.Err() == nil {
				return nil, ErrResetting // the replica closed
			}
			return page, nil
		}
		if lw.req.unchanged(ev, from) {
			continue // the client holds that result: wait for a change
		}
		evs, err := lw.events(ev)
		if err != nil {
			return nil, err
		}
		page.Events = append(page.Events, evs...)
		roundOpen = ev.ID == "" && ev.Type != "overflow"
		if ev.ID != "" {
			page.LastEventID = lw.outID(ev.ID)
		}
		if ev.Type == "overflow" {
			return page, nil
		}
	}
}

// liveWriter turns a watch's replica events into API events: records
// rendered as GET /v1/tables/{table}/records/{id} renders them, and for
// a restricted reader only those it may read.
type liveWriter struct {
	qs    *Queries
	req   *request
	reset bool            // the first event is a reset (a restricted reader resuming)
	held  map[string]bool // a restricted reader's: the records it was sent
	// A restricted reader's: held is kept (watchheld.go) under token for
	// key; shared: held is kept, copy it before a change; from: the
	// engine's id of the last event with one.
	key, token, from string
	shared           bool
}

// outID is the id a client is given for the engine's id: with the
// token naming its held set, for a restricted reader.
func (lw *liveWriter) outID(id string) string {
	if id == "" || lw.token == "" {
		return id
	}
	return id + "~" + lw.token
}

// share returns held to be kept: lw copies it before changing it.
func (lw *liveWriter) share() map[string]bool {
	if lw.held == nil {
		lw.held = map[string]bool{}
	}
	lw.shared = true
	return lw.held
}

// own makes held lw's own to change.
func (lw *liveWriter) own() {
	if lw.shared || lw.held == nil {
		held := make(map[string]bool, len(lw.held))
		for id := range lw.held {
			held[id] = true
		}
		lw.held, lw.shared = held, false
	}
}

// events returns the API events of ev (none when a restricted reader may
// not know of it).
func (lw *liveWriter) events(ev replica.Event) ([]api.WatchEvent, error) {
	if ev.ID != "" {
		lw.from = ev.ID
	}
	out := api.WatchEvent{Type: ev.Type, ID: lw.outID(ev.ID)}
	switch ev.Type {
	case "result", "reset":
		if lw.reset {
			out.Type, lw.reset = "reset", false
		}
		recs, err := lw.render(ev.Records)
		if err != nil {
			return nil, err
		}
		if lw.req.reader != nil {
			lw.held, lw.shared = map[string]bool{}, false
			for _, rec := range recs {
				lw.held[rec.ID] = true
			}
		}
		if len(recs) > 0 {
			out.Records = recs
		}
	case "add", "change":
		recs, err := lw.render([]replica.Record{*ev.Record})
		if err != nil {
			return nil, err
		}
		out.RecordID = ev.Record.ID
		if lw.req.reader != nil {
			switch {
			case len(recs) == 0 && lw.held[ev.Record.ID]: // it may no longer read it
				lw.own()
				delete(lw.held, ev.Record.ID)
				return []api.WatchEvent{{Type: "remove", ID: out.ID, RecordID: ev.Record.ID}}, nil
			case len(recs) == 0:
				return lw.none(ev), nil
			case !lw.held[ev.Record.ID]:
				out.Type = "add"
			}
			if !lw.held[ev.Record.ID] {
				lw.own()
				lw.held[ev.Record.ID] = true
			}
		}
		out.Record = &recs[0]
	case "remove":
		out.RecordID = ev.Record.ID
		if lw.req.reader != nil {
			if !lw.held[ev.Record.ID] {
				return lw.none(ev), nil
			}
			lw.own()
			delete(lw.held, ev.Record.ID)
		}
	case "overflow":
		out.Error = "the client fell behind the changes: resume from the last event id received"
	}
	return []api.WatchEvent{out}, nil
}

// none is what a restricted reader gets of an event about a record it
// may not read: nothing.
func (lw *liveWriter) none(replica.Event) []api.WatchEvent { return nil }

// render renders recs (a watch's records, in the result's order) as the
// API shows them now, leaving out those a restricted reader may not
// read. A record since deleted shows the values the event carried.
func (lw *liveWriter) render(recs []replica.Record) ([]api.Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	table := lw.req.q.Table
	v, err := lw.qs.Core.With(func(n *node.Node) (any, error) {
		out := make([]api.Record, 0, len(recs))
		for _, rr := range recs {
			rec, err := n.Store().Get(table, rr.ID)
			switch {
			case err == nil && rec.Exists():
				if lw.req.reader != nil {
					var ok bool
					if rec, ok = lw.req.reader.Narrow(table, rr.ID, rec); !ok {
						continue
					}
				}
				out = append(out, renderRecord(n, nil, table, rr.ID, rec, lw.req.q.Fields))
			case err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrOutOfScope):
				if lw.req.reader != nil {
					continue // gone: nothing it may read of it
				}
				out = append(out, valuesRecord(table, rr))
			default:
				return nil, err
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]api.Record), nil
}

// valuesRecord is a record the replica no longer holds, shown with the
// values a watch event carried.
func valuesRecord(table string, rr replica.Record) api.Record {
	out := api.Record{Table: table, ID: rr.ID, Fields: map[string]json.RawMessage{}, Conflicts: map[string][]api.Candidate{}}
	for name, x := range rr.Fields {
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte("null")
		}
		out.Fields[name] = b
	}
	return out
}

// IsWatch reports whether r is a live query or view (watch=true on GET
// /v1/tables/{table}/records or /v1/views/{name}): a route that waits.
func IsWatch(r *http.Request) bool {
	if w, err := boolParam(r, "watch"); err != nil || !w {
		return false
	}
	p := r.URL.Path
	return strings.HasPrefix(p, "/v1/views/") || strings.HasPrefix(p, "/v1/tables/") && strings.HasSuffix(p, "/records")
}
