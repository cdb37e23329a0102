package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query/ordkey"
)

// WatchRetry bounds how long Watch keeps trying to reopen a dropped
// stream before it gives up and returns the last error.
const WatchRetry = time.Minute

// maxEventBytes bounds one server-sent event (a "result" or "reset"
// carries a whole result).
const maxEventBytes = 256 << 20

// errStreamEnded is a stream the agent closed (an overflow, a restart).
var errStreamEnded = errors.New("the agent ended the stream")

// Watch follows q live (watch=true, server-sent events) and calls fn for
// each event: the result first ("result"), then "add", "change" and
// "remove" as records enter, change in or leave it. lastEventID "" starts
// with the result; an event's ID resumes after it. Watch returns when
// ctx is done (ctx.Err()), when fn returns an error (that error), or
// when the agent refuses the query (an *APIError: 400 for a bad query,
// 404 for an unknown view).
//
// A stream that drops (the agent restarts, the connection breaks, or the
// agent cuts this subscriber for falling behind: an "overflow" event,
// passed to fn) is reopened with Last-Event-ID, the last event ID
// received: the agent sends the changes since, or a "reset" event whose
// Records replace the result when it cannot. Reopening is retried, with
// a growing pause, for up to WatchRetry; an agent that cannot be reached
// before the first event is an error at once. LiveResult applies the
// events.
func (c *Client) Watch(ctx context.Context, q Query, lastEventID string, fn func(WatchEvent) error) error {
	last := lastEventID
	pause := 100 * time.Millisecond
	var failingSince time.Time
	opened := false // a stream was open once: a failure to reach the agent before is returned at once
	for {
		got, err := c.watchOnce(ctx, q, last, func(ev WatchEvent) error {
			if ev.ID != "" {
				last = ev.ID
			}
			return fn(ev)
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *APIError
		var fe *fnError
		switch {
		case errors.As(err, &fe):
			return fe.err
		case errors.As(err, &ae) && ae.Status < 500:
			return err
		}
		if got {
			opened, failingSince, pause = true, time.Time{}, 100*time.Millisecond
		} else if !opened {
			return err
		} else if failingSince.IsZero() {
			failingSince = time.Now()
		} else if time.Since(failingSince) > WatchRetry {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// fnError is an error of Watch's fn, which ends the watch.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// watchOnce opens one stream after last and reads it until it ends; got
// reports whether any event came.
func (c *Client) watchOnce(ctx context.Context, q Query, last string, fn func(WatchEvent) error) (got bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+q.path(url.Values{"watch": {"true"}}), nil)
	if err != nil {
		return false, &fnError{err} // not retried
	}
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("cannot reach the agent at %s: %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(resp.Status + " " + string(b))
		}
		return false, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, &APIError{Status: http.StatusNotAcceptable, Message: "the agent answered a watch with " + ct + ", not server-sent events"}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	var id, event string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 { // the end of an event
			if data == nil {
				continue
			}
			if event == "error" { // the agent cannot go on: data is a JSON string saying why
				var msg string
				if json.Unmarshal(data, &msg) != nil {
					msg = string(data)
				}
				return got, &fnError{fmt.Errorf("the agent ended the watch: %s", msg)}
			}
			var ev WatchEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				return got, fmt.Errorf("bad event from the agent: %w", err)
			}
			if ev.ID == "" {
				ev.ID = id
			}
			id, event, data, got = "", "", nil, true
			if err := fn(ev); err != nil {
				return got, &fnError{err}
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id = string(value)
		case "event":
			event = string(value)
		case "data":
			if data == nil {
				data = []byte{}
			} else {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
		// "" (a comment) keeps the connection alive.
	}
	if err := sc.Err(); err != nil {
		return got, err
	}
	return got, errStreamEnded
}

// LiveResult is the result of a live query kept current by applying its
// events, in the query's order: records by the order's fields (values
// ordered as the agent orders them: null or absent < bool < number <
// string < other), then by id.
type LiveResult struct {
	order  []orderField
	idDesc bool
	recs   map[string]liveRecord
	// Last is the last event applied.
	Last WatchEvent
}

type orderField struct {
	name string
	desc bool
}

type liveRecord struct {
	rec Record
	key [][]byte // per order field
}

// NewLiveResult returns an empty result ordered by order (the query's or
// the view's: fields with a leading "-" for descending, "id" or "-id"
// last for the ties).
func NewLiveResult(order []string) *LiveResult {
	l := &LiveResult{recs: map[string]liveRecord{}}
	for i, f := range order {
		name, desc := strings.CutPrefix(f, "-")
		if name == "id" && i == len(order)-1 {
			l.idDesc = desc
			break
		}
		l.order = append(l.order, orderField{name, desc})
	}
	return l
}

// Apply applies ev: "result" and "reset" replace the records, "add" and
// "change" set one, "remove" drops one; "overflow" changes nothing (the
// watch resumes).
func (l *LiveResult) Apply(ev WatchEvent) {
	l.Last = ev
	switch ev.Type {
	case "result", "reset":
		clear(l.recs)
		for _, r := range ev.Records {
			l.put(r)
		}
	case "add", "change":
		if ev.Record != nil {
			l.put(*ev.Record)
		}
	case "remove":
		delete(l.recs, ev.RecordID)
	}
}

func (l *LiveResult) put(r Record) {
	lr := liveRecord{rec: r, key: make([][]byte, len(l.order))}
	for i, f := range l.order {
		if f.name == "id" {
			lr.key[i] = ordkey.AppendScalar(nil, r.ID)
			continue
		}
		v, err := crdt.ValueFromJSON(r.Fields[f.name])
		if err != nil { // absent
			v = nil
		}
		lr.key[i] = ordkey.Append(nil, v)
	}
	l.recs[r.ID] = lr
}

// Len is how many records the result holds.
func (l *LiveResult) Len() int { return len(l.recs) }

// Records returns the result in the query's order.
func (l *LiveResult) Records() []Record {
	all := make([]liveRecord, 0, len(l.recs))
	for _, r := range l.recs {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		for k, f := range l.order {
			if c := bytes.Compare(a.key[k], b.key[k]); c != 0 {
				return c < 0 != f.desc
			}
		}
		if l.idDesc {
			return a.rec.ID > b.rec.ID
		}
		return a.rec.ID < b.rec.ID
	})
	out := make([]Record, len(all))
	for i, r := range all {
		out[i] = r.rec
	}
	return out
}
