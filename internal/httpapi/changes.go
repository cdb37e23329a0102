package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/store"
)

// --- change feed ---

// Feed is the change feed's source (the current replica's store and the
// agent's notifier).
type Feed interface {
	// Read returns up to limit changes after cursor after, and the feed
	// head.
	Read(after uint64, limit int) ([]api.Change, uint64, error)
	// Wait returns a channel closed at the next change; Closed reports
	// whether the feed was closed (shutdown).
	Wait() <-chan struct{}
	Closed() bool
}

// Changes returns the handler of GET /v1/changes on feed.
func Changes(feed Feed) func(w http.ResponseWriter, r *http.Request) (any, error) {
	return func(w http.ResponseWriter, r *http.Request) (any, error) { return changes(feed, w, r) }
}

// changes serves the change feed: long-poll JSON, or server-sent events
// when the client accepts text/event-stream. Cursors are feed positions,
// durable across restarts (not across a reset, which starts a new feed).
func changes(feed Feed, w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	since := q.Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID")
	}
	var after uint64
	switch since {
	case "", "0":
	case "now":
		_, head, err := feed.Read(0, 1)
		if err != nil {
			return nil, err
		}
		after = head
	default:
		var err error
		if after, err = strconv.ParseUint(since, 10, 64); err != nil {
			return nil, Errorf(http.StatusBadRequest, "since=%q: want a cursor from an earlier response, 0, or now", since)
		}
	}
	limit, err := PageLimit(r)
	if err != nil {
		return nil, err
	}
	timeout := DefaultPollTimeout
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return nil, Errorf(http.StatusBadRequest, "timeout=%q: want a duration such as 10s", s)
		}
		timeout = min(d, MaxPollTimeout)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return nil, streamChanges(feed, w, r, after, limit)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		wake := feed.Wait()
		cs, _, err := feed.Read(after, limit)
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 || timeout == 0 {
			next := strconv.FormatUint(after, 10)
			if len(cs) > 0 {
				next = cs[len(cs)-1].Cursor
			}
			return map[string]any{"changes": cs, "next": next}, nil
		}
		select {
		case <-wake:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

func streamChanges(feed Feed, w http.ResponseWriter, r *http.Request, after uint64, limit int) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return Errorf(http.StatusNotAcceptable, "streaming is not supported on this connection")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": replicad change feed after %d\n\n", after)
	fl.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		wake := feed.Wait()
		cs, _, err := feed.Read(after, limit)
		if err != nil && !errors.Is(err, ErrResetting) {
			fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
			fl.Flush()
			return nil
		}
		for _, c := range cs {
			b, _ := json.Marshal(c)
			fmt.Fprintf(w, "id: %s\nevent: change\ndata: %s\n\n", c.Cursor, b)
			after, _ = strconv.ParseUint(c.Cursor, 10, 64)
		}
		if len(cs) > 0 {
			fl.Flush()
			if len(cs) == limit {
				continue
			}
		}
		select {
		case <-wake:
			if feed.Closed() {
				return nil
			}
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-r.Context().Done():
			return nil
		}
	}
}

// Limits of the API.
const (
	DefaultPageLimit   = 100
	MaxPageLimit       = 1000
	DefaultPollTimeout = 30 * time.Second
	MaxPollTimeout     = 120 * time.Second
)

// IntParam parses the query parameter name: def when absent or 0, at
// most max; 400 for anything but a non-negative integer.
func IntParam(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, Errorf(http.StatusBadRequest, "%s: at offset 0: %q is not a non-negative integer", name, s)
	}
	if n == 0 {
		n = def
	}
	return min(n, max), nil
}

// PageLimit is the request's ?limit: DefaultPageLimit, at most
// MaxPageLimit.
func PageLimit(r *http.Request) (int, error) {
	return IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
}

// StoreChanges reads up to limit changes after cursor after from st's
// change feed as the API shows them, and the feed head (a Feed's Read on
// the current replica's store).
func StoreChanges(st *store.Store, after uint64, limit int) ([]api.Change, uint64, error) {
	es, err := st.Feed(after, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.Change, 0, len(es))
	for _, e := range es {
		out = append(out, api.Change{Cursor: strconv.FormatUint(e.Feed, 10), Table: e.Table, ID: e.ID, Origin: e.Origin.String(), Seq: e.Seq})
	}
	return out, st.FeedHead(), nil
}
