package live

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/query/source"
	"github.com/replicad/replicad/store"
)

// The model's times (query/internal/modeltest: the replica model that
// TestLiveModel drives).
const (
	t0    = modeltest.T0
	nowMs = modeltest.NowMs
)

var liveSeed = flag.Uint64("live.seed", 0, "seed of TestLiveModel (0: from the time, printed)")

var (
	env   = query.Env{NowMs: nowMs, Device: map[string]string{"user": "a"}}
	nowFn = func() time.Time { return time.UnixMilli(nowMs) }
)

var wheres = []string{
	"",
	"status == 'open'",
	"owner == 'a' && prio >= 2",
	"prio > 1",
	"prio < 3 && status != 'done'",
	"owner == device.user",
	"status == null",
	"prio == 2.5 || owner == 'c'",
	"x == 1 && owner >= 'b'",
	"status >= today - days(400)",
}

var orders = [][]string{nil, {"prio"}, {"-prio"}, {"owner", "prio"}, {"status", "-id"}, {"-id"}}

// client is what a subscriber holds: the result its events build.
type client struct {
	q     query.Query
	sub   *Subscription
	state map[string]map[string]crdt.Value
	n     int  // events applied
	ended bool // overflow received
	last  string
	// mark is a state the client held right after an event with an id,
	// chosen at random among them: resumption starts from it.
	markID    string
	markState map[string]map[string]crdt.Value
	marks     int
}

func cloneState(s map[string]map[string]crdt.Value) map[string]map[string]crdt.Value {
	out := make(map[string]map[string]crdt.Value, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// apply replays ev onto the client's result.
func (c *client) apply(t testing.TB, rng *rand.Rand, ev Event) {
	c.n++
	switch ev.Type {
	case Result, Reset:
		c.state = map[string]map[string]crdt.Value{}
		for _, r := range ev.Records {
			c.state[r.ID] = r.Fields
		}
	case Add, Change:
		c.state[ev.Record.ID] = ev.Record.Fields
	case Remove:
		delete(c.state, ev.Record.ID)
	case Overflow:
		c.ended = true
		if ev.ID != c.last {
			t.Fatalf("overflow id %q, want the last id received %q (%+v after %d events)", ev.ID, c.last, c.q, c.n)
		}
		return
	default:
		t.Fatalf("unknown event type %q", ev.Type)
	}
	if ev.ID != "" {
		c.last = ev.ID
		c.marks++
		if rng != nil && rng.IntN(c.marks) == 0 {
			c.markID, c.markState = ev.ID, cloneState(c.state)
		}
	}
}

// drain applies every queued event.
func (c *client) drain(t testing.TB, rng *rand.Rand) {
	for c.sub.Len() > 0 {
		ev, err := c.sub.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.apply(t, rng, ev)
	}
}

// check compares a client's result with the query's result now.
func check(t testing.TB, st *store.Store, q query.Query, got map[string]map[string]crdt.Value) string {
	res, err := source.Run(st, q, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != len(got) {
		return fmt.Sprintf("%d records, want %d (%v / %v)", len(got), len(res.Records), keys(got), ids(res.Records))
	}
	for _, r := range res.Records {
		f, ok := got[r.ID]
		if !ok {
			return fmt.Sprintf("record %s missing (%v / %v)", r.ID, keys(got), ids(res.Records))
		}
		if len(f) != len(r.Fields) {
			return fmt.Sprintf("record %s: %d fields, want %d", r.ID, len(f), len(r.Fields))
		}
		for k, v := range r.Fields {
			if !bytes.Equal(f[k], v) {
				return fmt.Sprintf("record %s field %s: %v, want %v", r.ID, k, f[k], v)
			}
		}
	}
	return ""
}

func keys(m map[string]map[string]crdt.Value) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ids(rs []query.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func randQuery(rng *rand.Rand) query.Query {
	q := query.Query{Table: "t", Where: wheres[rng.IntN(len(wheres))], Order: orders[rng.IntN(len(orders))]}
	if rng.IntN(2) == 0 {
		q.Limit = 1 + rng.IntN(6) // a window, often full
	}
	return q
}

// TestLiveModel: random changes of every kind while subscribers to random
// queries listen (some drained often, some rarely, one never: it
// overflows). For every subscriber, its events replayed onto its first
// result equal the query's final result; resuming from a random event id
// of it, replayed onto the state it held at that id, equals it too; the
// subscriber that overflowed ends with an overflow event naming its last
// id, and resumes from it correctly.
func TestLiveModel(t *testing.T) {
	seed := *liveSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-live.seed to repeat)", seed)
	var incremental, resets, overflows int
	for run := uint64(0); run < 4; run++ {
		rng := rand.New(rand.NewPCG(seed, run))
		m := modeltest.New(t, rng, modeltest.Open(t, fmt.Sprint("/m", run), t0),
			modeltest.Open(t, fmt.Sprint("/p", run), t0+500), modeltest.Open(t, fmt.Sprint("/q", run), t0+900))
		if run%2 == 1 {
			for _, d := range []store.IndexDef{
				{Name: "by_status", Table: "t", Fields: []string{"status"}},
				{Name: "by_prio", Table: "t", Fields: []string{"prio"}},
			} {
				if err := m.R.S.DeclareIndex(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := 0; i < 30; i++ {
			m.Step()
		}
		e := New(m.R.S, Options{Poll: 5 * time.Millisecond, Now: nowFn})
		slowE := New(m.R.S, Options{Poll: 5 * time.Millisecond, Now: nowFn, Queue: 4})
		var cs []*client
		subscribe := func(e *Engine, q query.Query) *client {
			sub, err := e.Subscribe(q, env.Device, "")
			if err != nil {
				t.Fatal(err)
			}
			c := &client{q: q, sub: sub}
			return c
		}
		for i := 0; i < 8; i++ {
			cs = append(cs, subscribe(e, randQuery(rng)))
		}
		cs = append(cs, cs[0].cloneSub(t, e)) // two subscribers sharing a view
		slow := subscribe(slowE, query.Query{Table: "t"})
		slow.drain(t, nil)
		for i := 0; i < 400; i++ {
			m.Step()
			if rng.IntN(3) == 0 {
				e.Notify()
				slowE.Notify()
			}
			if rng.IntN(4) == 0 {
				if err := e.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			for j, c := range cs {
				if rng.IntN(1+j) == 0 {
					c.drain(t, rng)
				}
			}
			if i == 200 { // a late subscriber
				cs = append(cs, subscribe(e, randQuery(rng)))
			}
		}
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			c.drain(t, rng)
			if c.ended {
				t.Fatalf("seed %d run %d: subscriber %d (queue 1024) overflowed", seed, run, i)
			}
			if msg := check(t, m.R.S, c.q, c.state); msg != "" {
				t.Fatalf("seed %d run %d subscriber %d %+v after %d events: %s", seed, run, i, c.q, c.n, msg)
			}
			// Resume from a random id it received.
			r := &client{q: c.q, state: c.markState}
			sub, err := e.Subscribe(c.q, env.Device, c.markID)
			if err != nil {
				t.Fatal(err)
			}
			r.sub = sub
			if ev, _ := peek(sub); ev.Type == Reset {
				resets++
			} else {
				incremental++
			}
			r.drain(t, nil)
			if msg := check(t, m.R.S, c.q, r.state); msg != "" {
				t.Fatalf("seed %d run %d subscriber %d %+v resumed from %s: %s", seed, run, i, c.q, c.markID, msg)
			}
			sub.Close()
		}
		// The slow subscriber: cut with an overflow naming its last id.
		if err := slowE.Sync(); err != nil {
			t.Fatal(err)
		}
		slow.drain(t, nil)
		if !slow.ended {
			t.Fatalf("seed %d run %d: the subscriber that never read was not cut (%d events)", seed, run, slow.n)
		}
		overflows++
		if _, err := slow.sub.Next(context.Background()); err != ErrClosed {
			t.Fatalf("after overflow: %v, want ErrClosed", err)
		}
		sub, err := slowE.Subscribe(slow.q, env.Device, slow.last)
		if err != nil {
			t.Fatal(err)
		}
		slow.sub, slow.ended = sub, false
		slow.drain(t, nil)
		if msg := check(t, m.R.S, slow.q, slow.state); msg != "" {
			t.Fatalf("seed %d run %d: slow subscriber resumed: %s", seed, run, msg)
		}
		// Ids are the store's positions: another engine of the store
		// resumes from one correctly.
		other := &client{q: slow.q, state: slow.state}
		if other.sub, err = e.Subscribe(slow.q, env.Device, slow.last); err != nil {
			t.Fatal(err)
		}
		other.drain(t, nil)
		if msg := check(t, m.R.S, slow.q, other.state); msg != "" {
			t.Fatalf("seed %d run %d: resumed on another engine: %s", seed, run, msg)
		}
		// A resumption from a malformed or foreign id is a reset.
		for _, id := range []string{"x", "1.2.3.0", "1.2.3.4.0", fmt.Sprintf("%x.0.0.0.0.0", rng.Uint64()|1), "1.2.x.3.3.0", "1.3.2.0.0.0", "1.0.0.2.1.0", slow.last + ".0"} {
			if sub, err = e.Subscribe(slow.q, env.Device, id); err != nil {
				t.Fatal(err)
			}
			if ev, _ := peek(sub); ev.Type != Reset {
				t.Fatalf("resuming from %q: %s, want a reset", id, ev.Type)
			}
			sub.Close()
		}
		e.Close()
		slowE.Close()
	}
	t.Logf("resumptions: %d incremental, %d resets; overflows %d", incremental, resets, overflows)
	if incremental == 0 {
		t.Error("no resumption was incremental")
	}
}

// cloneSub subscribes a second client to c's query.
func (c *client) cloneSub(t testing.TB, e *Engine) *client {
	sub, err := e.Subscribe(c.q, env.Device, "")
	if err != nil {
		t.Fatal(err)
	}
	return &client{q: c.q, sub: sub}
}

// peek returns the first queued event without consuming it.
func peek(s *Subscription) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return Event{}, false
	}
	return s.q[0], true
}

// TestLiveWindow: in a full window (order -prio, limit 2) a record that
// leaves lets the next one in, one entering ahead pushes the last out,
// and a hide (a scope change, no feed entry) is a remove like a delete.
func TestLiveWindow(t *testing.T) {
	r := modeltest.Open(t, "/w", t0)
	e := New(r.S, Options{Poll: time.Hour, Now: nowFn})
	defer e.Close()
	write := func(id string, prio int64, del bool) {
		var fs []crdt.FieldValue
		if !del {
			fs = []crdt.FieldValue{{Name: "prio", Value: crdt.MustValue(prio)}}
		}
		if _, err := r.S.Write(r.Clock, "t", id, fs, del); err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(1); i <= 5; i++ {
		write(fmt.Sprint("r", i), i, false)
	}
	sub, err := e.Subscribe(query.Query{Table: "t", Order: []string{"-prio"}, Limit: 2}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		ev, err := sub.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Record != nil {
			return ev.Type + " " + ev.Record.ID
		}
		return fmt.Sprint(ev.Type, " ", ids(ev.Records))
	}
	expect := func(step string, want ...string) {
		t.Helper()
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for sub.Len() > 0 {
			got = append(got, next())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: events %q, want %q", step, got, want)
		}
	}
	expect("subscribe", "result [r5 r4]")
	write("r5", 0, true)
	expect("delete r5", "remove r5", "add r3")
	write("r9", 9, false)
	expect("r9 enters ahead", "remove r3", "add r9")
	write("r1", 2, false)
	expect("a change outside the window", []string{}...)
	write("r4", 8, false)
	expect("a change inside the window", "change r4")
	if err := r.S.Update(func(b *store.Batch) error { b.SetHidden("t", "r9", true, nil); return nil }); err != nil {
		t.Fatal(err)
	}
	expect("r9 hidden", "remove r9", "add r3")
	if err := r.S.Update(func(b *store.Batch) error { b.SetHidden("t", "r9", false, nil); return nil }); err != nil {
		t.Fatal(err)
	}
	expect("r9 shown again", "remove r3", "add r9")
}
