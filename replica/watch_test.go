package replica

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

// held is a watcher's copy of a result, by record id.
type held map[string]map[string]any

// apply applies ev as a client does (change as an upsert, remove as a
// delete if present) and returns the last non-empty ID.
func (h held) apply(t *testing.T, ev Event, last string) string {
	t.Helper()
	switch ev.Type {
	case "result", "reset":
		clear(h)
		for _, rec := range ev.Records {
			h[rec.ID] = rec.Fields
		}
	case "add", "change":
		h[ev.Record.ID] = ev.Record.Fields
	case "remove":
		delete(h, ev.Record.ID)
	case "overflow":
	default:
		t.Fatalf("unexpected event %+v", ev)
	}
	if ev.ID != "" {
		return ev.ID
	}
	return last
}

// checkCurrent compares h with a fresh Query of q.
func checkCurrent(t *testing.T, r *Replica, q Query, h held) {
	t.Helper()
	res, err := r.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := held{}
	for _, rec := range res.Records {
		want[rec.ID] = rec.Fields
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("replayed result\n%v\nwant (fresh Query)\n%v", h, want)
	}
}

// readUntilID reads events into h until one carries an ID.
func readUntilID(t *testing.T, ch <-chan Event, h held) (last string, types []string) {
	t.Helper()
	for last == "" {
		ev, ok := waitEvent(t, ch)
		if !ok {
			t.Fatal("watch closed")
		}
		types = append(types, ev.Type)
		last = h.apply(t, ev, last)
	}
	return last, types
}

func TestWatchFrom(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{})
	put := func(id, status string, prio int) {
		t.Helper()
		if err := r.Put(ctx, "jobs", id, map[string]any{"status": status, "prio": prio}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		put(fmt.Sprintf("j%d", i), "open", i)
	}
	q := Query{Table: "jobs", Where: "status == 'open'"}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := r.Watch(wctx, q)
	if err != nil {
		t.Fatal(err)
	}
	h := held{}
	_, types := readUntilID(t, ch, h)
	if types[0] != "result" || len(h) != 5 {
		t.Fatalf("first events %v, result %v", types, h)
	}
	put("j5", "open", 5) // seen by the watch
	last, _ := readUntilID(t, ch, h)
	cancel()
	for range ch {
	}

	// Writes the watcher does not see: an add, a change, a leave, a
	// delete, and a record that never matches.
	put("j6", "open", 6)
	put("j1", "open", 10)
	put("j2", "done", 2)
	if err := r.Delete(ctx, "jobs", "j3"); err != nil {
		t.Fatal(err)
	}
	put("x", "done", 0)

	ch, err = r.WatchFrom(ctx, q, last)
	if err != nil {
		t.Fatal(err)
	}
	_, types = readUntilID(t, ch, h)
	for _, ty := range types {
		if ty != "change" && ty != "remove" {
			t.Fatalf("resumption sent %v, want only change and remove events", types)
		}
	}
	checkCurrent(t, r, q, h)

	// A bad id is a reset, not an error.
	ch, err = r.WatchFrom(ctx, q, "nonsense")
	if err != nil {
		t.Fatal(err)
	}
	h2 := held{}
	if _, types = readUntilID(t, ch, h2); types[0] != "reset" {
		t.Fatalf("resuming from a bad id: %v, want reset", types)
	}
	checkCurrent(t, r, q, h2)
}

func TestWatchOverflow(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{WatchQueue: 4})
	q := Query{Table: "jobs", Where: "status == 'open'"}
	ch, err := r.Watch(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	h := held{}
	last, _ := readUntilID(t, ch, h)
	// The watcher reads nothing while 20 records enter its result.
	for i := range 20 {
		if err := r.Put(ctx, "jobs", fmt.Sprintf("j%02d", i), map[string]any{"status": "open"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.live.Sync(); err != nil { // every write reached the queue
		t.Fatal(err)
	}
	var over *Event
	for {
		ev, ok := waitEvent(t, ch)
		if !ok {
			break
		}
		if over != nil {
			t.Fatalf("event %+v after the overflow event", ev)
		}
		last = h.apply(t, ev, last)
		if ev.Type == "overflow" {
			over = &ev
		}
	}
	if over == nil {
		t.Fatal("channel closed without an overflow event")
	}
	if over.ID == "" || over.ID != last {
		t.Fatalf("overflow id %q, want the last id received %q", over.ID, last)
	}
	if len(h) >= 20 {
		t.Fatalf("watcher holds %d records: it did not fall behind", len(h))
	}

	ch, err = r.WatchFrom(ctx, q, over.ID)
	if err != nil {
		t.Fatal(err)
	}
	readUntilID(t, ch, h)
	checkCurrent(t, r, q, h)
	// And it goes on live.
	if err := r.Put(ctx, "jobs", "j00", map[string]any{"status": "done"}); err != nil {
		t.Fatal(err)
	}
	readUntilID(t, ch, h)
	checkCurrent(t, r, q, h)
}

// TestWatchFromAfterReopen: an event id from before the replica closed
// resumes incrementally once it is open again on the same directory: the
// writes made before and after the reopen come as change and remove
// events.
func TestWatchFromAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := open(t, Config{DataDir: dir})
	put := func(r *Replica, id, status string, prio int) {
		t.Helper()
		if err := r.Put(ctx, "jobs", id, map[string]any{"status": status, "prio": prio}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		put(r, fmt.Sprintf("j%d", i), "open", i)
	}
	q := Query{Table: "jobs", Where: "status == 'open'"}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := r.Watch(wctx, q)
	if err != nil {
		t.Fatal(err)
	}
	h := held{}
	readUntilID(t, ch, h) // the result
	put(r, "j5", "open", 5)
	last, _ := readUntilID(t, ch, h)
	cancel()
	for range ch {
	}
	put(r, "j1", "open", 10) // before the close
	put(r, "j2", "done", 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r = open(t, Config{DataDir: dir})
	put(r, "j6", "open", 6) // after the reopen
	if err := r.Delete(ctx, "jobs", "j3"); err != nil {
		t.Fatal(err)
	}
	put(r, "x", "done", 0)
	ch, err = r.WatchFrom(ctx, q, last)
	if err != nil {
		t.Fatal(err)
	}
	_, types := readUntilID(t, ch, h)
	for _, ty := range types {
		if ty != "change" && ty != "remove" {
			t.Fatalf("resumption after a reopen sent %v, want only change and remove events", types)
		}
	}
	checkCurrent(t, r, q, h)
}
