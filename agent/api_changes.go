package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/httpapi"
)

// --- change feed ---

// readFeed returns up to limit changes after cursor, and the feed head.
func (a *Agent) readFeed(after uint64, limit int) ([]api.Change, uint64, error) {
	rp, err := a.acquire()
	if err != nil {
		return nil, 0, err
	}
	defer a.mu.RUnlock()
	es, err := rp.store.Feed(after, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.Change, 0, len(es))
	for _, e := range es {
		out = append(out, api.Change{Cursor: strconv.FormatUint(e.Feed, 10), Table: e.Table, ID: e.ID, Origin: e.Origin.String(), Seq: e.Seq})
	}
	return out, rp.store.FeedHead(), nil
}

// changes serves the change feed: long-poll JSON, or server-sent events
// when the client accepts text/event-stream. Cursors are feed positions,
// durable across restarts (not across a reset, which starts a new feed).
func (a *Agent) changes(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	since := q.Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID")
	}
	var after uint64
	switch since {
	case "", "0":
	case "now":
		_, head, err := a.readFeed(0, 1)
		if err != nil {
			return nil, err
		}
		after = head
	default:
		var err error
		if after, err = strconv.ParseUint(since, 10, 64); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "since=%q: want a cursor from an earlier response, 0, or now", since)
		}
	}
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	timeout := defaultPollTimeout
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "timeout=%q: want a duration such as 10s", s)
		}
		timeout = min(d, maxPollTimeout)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return nil, a.streamChanges(w, r, after, limit)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		wake := a.feed.Wait()
		cs, _, err := a.readFeed(after, limit)
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

func (a *Agent) streamChanges(w http.ResponseWriter, r *http.Request, after uint64, limit int) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return httpapi.Errorf(http.StatusNotAcceptable, "streaming is not supported on this connection")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": replicad change feed after %d\n\n", after)
	fl.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		wake := a.feed.Wait()
		cs, _, err := a.readFeed(after, limit)
		if err != nil && !errors.Is(err, errResetting) {
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
			if a.feed.Closed() {
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
