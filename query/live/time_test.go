package live

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
)

// TestLiveTimeWhere: a view whose where clause reads now runs again as
// the engine's clock passes, with no write: a record enters the result
// when the clock passes its due time. A view that does not read the time
// is not run again, and resuming a view that reads it is a reset (what
// the time changed touched no record).
func TestLiveTimeWhere(t *testing.T) {
	r := modeltest.Open(t, "/time", t0)
	var clock atomic.Int64
	clock.Store(nowMs)
	due := func(ms int64) crdt.Value { return crdt.MustValue(time.UnixMilli(ms).UTC().Format(time.RFC3339)) }
	for id, at := range map[string]int64{"past": nowMs - 60_000, "soon": nowMs + 60_000, "later": nowMs + 3_600_000} {
		if _, err := r.S.Write(r.Clock, "t", id, []crdt.FieldValue{{Name: "due", Value: due(at)}}, false); err != nil {
			t.Fatal(err)
		}
	}
	head := r.S.FeedHead()
	e := New(r.S, Options{Poll: 5 * time.Millisecond, Now: func() time.Time { return time.UnixMilli(clock.Load()) }})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func(sub *Subscription) Event {
		t.Helper()
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no event as the clock passed a due time: %v", err)
		}
		return ev
	}
	show := func(ev Event) string {
		if ev.Record != nil {
			return ev.Type + " " + ev.Record.ID
		}
		return fmt.Sprint(ev.Type, " ", ids(ev.Records))
	}
	q := query.Query{Table: "t", Where: "due < now", Order: []string{"due"}}
	sub, err := e.Subscribe(q, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	first := next(sub)
	if show(first) != "result [past]" {
		t.Fatalf("first event %q", show(first))
	}
	untimed, err := e.Subscribe(query.Query{Table: "t", Where: "due != null"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	next(untimed)
	runs := func(s *Subscription) int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return s.v.runs
	}
	untimedRuns := runs(untimed)

	clock.Store(nowMs + 61_000)
	ev := next(sub)
	if show(ev) != "add soon" || ev.ID == "" {
		t.Fatalf("after soon's due time: %q (id %q)", show(ev), ev.ID)
	}
	clock.Store(nowMs + 3_601_000)
	if ev := next(sub); show(ev) != "add later" {
		t.Fatalf("after later's due time: %q", show(ev))
	}
	if r.S.FeedHead() != head {
		t.Fatal("the store was written")
	}
	if n := runs(untimed); n != untimedRuns {
		t.Fatalf("a view that does not read the time ran %d times more", n-untimedRuns)
	}
	// Resuming from before the clock passed: soon and later entered with
	// no record touched, so the result is sent again whole.
	again, err := e.Subscribe(q, nil, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if ev := next(again); show(ev) != "reset [past soon later]" {
		t.Fatalf("resumed from before the due times: %q", show(ev))
	}
}
