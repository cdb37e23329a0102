package live

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
)

// TestLiveUpdateJudgesTouched: a round judges only the records it touched
// (Engine.update) instead of running the view's query, whenever that
// gives the result a run would; it runs the query when a record leaves a
// full window (the next match is not known) and for a where clause
// reading the time. The events are those a run gives (TestLiveModel
// checks that over random histories).
func TestLiveUpdateJudgesTouched(t *testing.T) {
	r := modeltest.Open(t, "/u", t0)
	e := New(r.S, Options{Poll: time.Hour, Now: nowFn})
	defer e.Close()
	write := func(id string, prio int64, owner string, del bool) {
		var fs []crdt.FieldValue
		if !del {
			fs = []crdt.FieldValue{{Name: "prio", Value: crdt.MustValue(prio)}, {Name: "owner", Value: crdt.MustValue(owner)}}
		}
		if _, err := r.S.Write(r.Clock, "t", id, fs, del); err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(1); i <= 8; i++ {
		write(fmt.Sprint("r", i), i, "a", false)
	}
	type sub struct {
		name string
		s    *Subscription
		v    *view
	}
	var subs []sub
	for _, c := range []struct {
		name string
		q    query.Query
	}{
		{"all", query.Query{Table: "t", Where: "owner == 'a'", Order: []string{"-prio"}}},
		{"window", query.Query{Table: "t", Where: "owner == 'a'", Order: []string{"-prio"}, Limit: 3}},
		{"timed", query.Query{Table: "t", Where: "owner == 'a' && now > timestamp('2000-01-01T00:00:00Z')"}},
	} {
		s, err := e.Subscribe(c.q, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e.mu.Lock()
		v := e.views[viewKey(c.q, nil)]
		e.mu.Unlock()
		subs = append(subs, sub{c.name, s, v})
	}
	step := func(what string, runs map[string]int, want map[string]string) {
		t.Helper()
		before := map[string]int{}
		for _, s := range subs {
			before[s.name] = s.v.runs
		}
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			var got []string
			for s.s.Len() > 0 {
				ev, err := s.s.Next(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if ev.Record != nil {
					got = append(got, ev.Type+" "+ev.Record.ID)
				}
			}
			if w, ok := want[s.name]; ok && fmt.Sprint(got) != w {
				t.Errorf("%s: %s: events %v, want %s", what, s.name, got, w)
			}
			if n := s.v.runs - before[s.name]; n != runs[s.name] {
				t.Errorf("%s: %s ran its query %d times, want %d", what, s.name, n, runs[s.name])
			}
		}
	}
	for _, s := range subs { // the results
		if _, err := s.s.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	write("r2", 2, "a", false) // a change outside the window, same values
	step("no change", map[string]int{"timed": 1}, map[string]string{"all": "[]", "window": "[]"})
	write("r9", 9, "a", false) // enters ahead of the window's last: r6 goes to the next page
	step("enters", map[string]int{"timed": 1}, map[string]string{"all": "[add r9]", "window": "[remove r6 add r9]"})
	write("r7", 70, "a", false) // moves up within the window
	step("moves within", map[string]int{"timed": 1}, map[string]string{"all": "[change r7]", "window": "[change r7]"})
	write("r1", 0, "b", false) // leaves, outside the window
	step("leaves outside", map[string]int{"timed": 1}, map[string]string{"all": "[remove r1]", "window": "[]"})
	write("r9", 0, "a", true) // leaves the window: the next match is not known
	step("leaves the window", map[string]int{"window": 1, "timed": 1}, map[string]string{"all": "[remove r9]", "window": "[remove r9 add r6]"})
	for _, s := range subs {
		if s.name != "timed" && s.v.updates == 0 {
			t.Errorf("%s: never updated by judging the touched records", s.name)
		}
	}
}
