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

// TestExactID: a result's id is exact (ExactID) when its snapshot shows
// exactly what the engine had read; a view made while the engine has not
// read a write its snapshot shows gets an inexact id, so that two such
// results of one full window, perhaps different, are never taken for the
// same result by their id (a long poll waiting for a change would then
// miss it).
func TestExactID(t *testing.T) {
	r := modeltest.Open(t, "/x", t0)
	e := New(r.S, Options{Poll: time.Hour, Now: nowFn}) // reads only when synced
	defer e.Close()
	write := func(id string, prio int64) {
		if _, err := r.S.Write(r.Clock, "t", id, []crdt.FieldValue{{Name: "prio", Value: crdt.MustValue(prio)}}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(1); i <= 5; i++ {
		write(fmt.Sprint("r", i), i)
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	q := query.Query{Table: "t", Order: []string{"-prio"}, Limit: 2} // a full window: a resumption is a reset
	first := func(last string) Event {
		t.Helper()
		sub, err := e.Subscribe(q, nil, last)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ev, err := sub.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	res := first("")
	if !ExactID(res.ID) {
		t.Fatalf("the result of an idle store has an inexact id %q", res.ID)
	}
	// A write the engine has not read yet (no wake, no poll): the next
	// view's snapshot shows it.
	write("r1", 9)
	reset := first(res.ID)
	if reset.Type != Reset || fmt.Sprint(ids(reset.Records)) != "[r1 r5]" {
		t.Fatalf("resumed: %s %v, want a reset to [r1 r5]", reset.Type, ids(reset.Records))
	}
	if reset.ID == res.ID && ExactID(reset.ID) {
		t.Fatalf("a different result carries the same exact id %q", reset.ID)
	}
	if ExactID(reset.ID) {
		t.Fatalf("a result showing a write the engine had not read has an exact id %q", reset.ID)
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	again := first(reset.ID)
	if !ExactID(again.ID) || fmt.Sprint(ids(again.Records)) != "[r1 r5]" {
		t.Fatalf("after the engine read the write: %s %q %v", again.Type, again.ID, ids(again.Records))
	}
	for _, bad := range []string{"", "x", "1.2.3.4", "ff.2.1.0.0.1"} {
		if ExactID(bad) {
			t.Errorf("ExactID(%q) = true", bad)
		}
	}
}
