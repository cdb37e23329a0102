package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
)

// TestLiveQueryResumesAfterRestart: a live query's event id taken before
// the agent stops (cleanly, then killed) resumes after it starts again
// with the changes made before and after (add, change and remove
// events, not a reset), and they give the query's result.
func TestLiveQueryResumesAfterRestart(t *testing.T) {
	d := startNode(t, "device")
	ctx := context.Background()
	c := d.client()
	put := func(id, status string) {
		t.Helper()
		if _, err := c.Put(ctx, "jobs", id, map[string]json.RawMessage{"status": json.RawMessage(fmt.Sprintf("%q", status))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 4; i++ {
		put(fmt.Sprint("j", i), "open")
	}
	q := client.Query{Table: "jobs", Where: "status == 'open'"}
	first, err := c.WatchPoll(ctx, q, "", time.Second)
	if err != nil || len(first.Events) != 1 || first.Events[0].Type != "result" {
		t.Fatalf("first poll: %+v, %v", first, err)
	}
	held := map[string]string{}
	apply := func(p *client.WatchPage) (types []string) {
		for _, ev := range p.Events {
			types = append(types, ev.Type)
			switch ev.Type {
			case "result", "reset":
				clear(held)
				for _, r := range ev.Records {
					held[r.ID] = fieldsOf(t, &r)
				}
			case "add", "change":
				held[ev.RecordID] = fieldsOf(t, ev.Record)
			case "remove":
				delete(held, ev.RecordID)
			}
		}
		return types
	}
	check := func(what string) {
		t.Helper()
		page, err := c.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for id, f := range held {
			got = append(got, id+f)
		}
		for _, r := range page.Records {
			want = append(want, r.ID+fieldsOf(t, &r))
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: replayed result %v, want %v", what, got, want)
		}
	}
	apply(first)
	last := first.LastEventID

	for _, stop := range []string{"stop", "kill -9"} {
		put("j1", "done") // before the stop: leaves
		put("j9", "open") // enters
		if stop == "stop" {
			d.stop()
		} else {
			d.kill()
		}
		d.start()
		put("j2", "open!") // after the start: leaves
		put("j3", "open")  // changes nothing it shows
		if _, err := c.Delete(ctx, "jobs", "j4"); err != nil {
			t.Fatal(err)
		}
		put(fmt.Sprint("k", stop[0:1]), "open")
		p, err := c.WatchPoll(ctx, q, last, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		types := apply(p)
		for _, ty := range types {
			if ty != "add" && ty != "change" && ty != "remove" {
				t.Fatalf("resuming after %s: events %v, want changes, not a reset", stop, types)
			}
		}
		check("after " + stop)
		last = p.LastEventID
		put("j1", "open") // for the next round
		put("j2", "open")
		put("j4", "open")
	}
}
