package httpapi

import (
	"testing"

	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/replica"
)

// TestLongPollUnchangedNeedsExactID: a long poll waits on a reset only
// when it is the very result the client holds: the same exact id. A
// reset carrying the client's id when that id is inexact (its result
// came from a snapshot that showed writes the engine had not read, and
// the reset's may show others) is answered: waiting on it could miss a
// change for good, since the engine then reads those writes and finds
// nothing new to send.
func TestLongPollUnchangedNeedsExactID(t *testing.T) {
	const exact = "1f.7.7.2.2.1"   // feed read 7, shows up to 7; scope 2 and 2
	const inexact = "1f.7.9.2.2.1" // shows writes up to 9, read up to 7
	const scopeAhead = "1f.7.7.2.3.1"
	req := &request{}
	timed := &request{q: query.Query{Where: "due < now"}}
	for _, c := range []struct {
		req       *request
		ev        replica.Event
		last      string
		unchanged bool
	}{
		{req, replica.Event{Type: "reset", ID: exact}, exact, true},
		{req, replica.Event{Type: "reset", ID: inexact}, inexact, false},
		{req, replica.Event{Type: "reset", ID: scopeAhead}, scopeAhead, false},
		{req, replica.Event{Type: "reset", ID: exact}, "1f.6.6.2.2.1", false},
		{req, replica.Event{Type: "change", ID: exact}, exact, false},
		{req, replica.Event{Type: "reset", ID: exact}, "", false},
		{timed, replica.Event{Type: "reset", ID: exact}, exact, false},
	} {
		if got := c.req.unchanged(c.ev, c.last); got != c.unchanged {
			t.Errorf("unchanged(%s %s after %q) where %q = %v, want %v", c.ev.Type, c.ev.ID, c.last, c.req.q.Where, got, c.unchanged)
		}
	}
}
