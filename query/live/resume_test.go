package live

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/store"
)

// TestLiveResumeWaitsWithoutLock: a resumption whose view shows a write
// not yet durable waits for its fsync; meanwhile the engine keeps
// serving: another subscriber receives the event of a durable write at
// once, the view itself moves on (a hide, whose scope signal comes
// before its fsync), and the resumption then completes incrementally,
// with what the view's rounds changed meanwhile.
func TestLiveResumeWaitsWithoutLock(t *testing.T) {
	var block atomic.Bool
	syncing := make(chan struct{}, 1)
	release := make(chan struct{})
	var released atomic.Bool
	unblock := func() {
		if released.CompareAndSwap(false, true) {
			close(release)
		}
	}
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if block.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) && strings.HasSuffix(op.Path, ".log") {
			select {
			case syncing <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	}))
	st, err := store.Open(store.Options{Dir: "/slow", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer unblock() // before the store closes: Close waits for the fsync
	clock := modeltest.ClockAt(t0)
	write := func(table, id string, n int64) error {
		_, err := st.Write(clock, table, id, []crdt.FieldValue{{Name: "n", Value: crdt.MustValue(n)}}, false)
		return err
	}
	for _, k := range [][2]string{{"a", "x"}, {"b", "x"}, {"b", "y"}} {
		if err := write(k[0], k[1], 1); err != nil {
			t.Fatal(err)
		}
	}
	e := New(st, Options{Poll: time.Hour, Now: nowFn})
	defer e.Close()
	waiting := make(chan struct{}, 1)
	e.testHookResumeWait = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := func(sub *Subscription, what string) Event {
		t.Helper()
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ev
	}
	subA, err := e.Subscribe(query.Query{Table: "a"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	if ev := next(subA, "a"); ev.Type != Result {
		t.Fatalf("a: %+v", ev)
	}
	qb := query.Query{Table: "b", Order: []string{"id"}}
	subB, err := e.Subscribe(qb, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	evB := next(subB, "b")
	if evB.Type != Result || evB.ID == "" || len(evB.Records) != 2 {
		t.Fatalf("b: %+v", evB)
	}
	subB.Close() // its client went away: the view goes

	// a/x changes durably (the engine is not told yet); then b/x changes,
	// visible but its fsync held.
	if err := write("a", "x", 2); err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	wrote := make(chan error, 2)
	go func() { wrote <- write("b", "x", 2) }()
	select {
	case <-syncing:
	case <-ctx.Done():
		t.Fatal("the write's fsync never started")
	}
	for st.FeedVisible() <= st.FeedHead() {
		if ctx.Err() != nil {
			t.Fatal("b/x never became visible")
		}
		time.Sleep(time.Millisecond)
	}
	// b's client comes back, resuming: its view, made again on a snapshot
	// showing b/x's change, must wait for that fsync.
	type resumed struct {
		sub *Subscription
		err error
	}
	res := make(chan resumed, 1)
	go func() {
		s, err := e.Subscribe(qb, nil, evB.ID)
		res <- resumed{s, err}
	}()
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatal("the resumption did not wait for the fsync")
	}
	// Meanwhile the engine serves a's subscriber at once (well before the
	// resumption would give up waiting).
	e.Notify()
	promptly, cancelPrompt := context.WithTimeout(ctx, resumeWait*3/4)
	defer cancelPrompt()
	ev, err := subA.Next(promptly)
	if err != nil {
		t.Fatalf("a's subscriber got no event while a resumption waited for an fsync: %v", err)
	}
	if ev.Type != Change || ev.Record.ID != "x" || ev.ID == "" {
		t.Fatalf("a: %+v", ev)
	}
	// And b's view moves on: a new subscriber sees b/y hidden.
	subB2, err := e.Subscribe(qb, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer subB2.Close()
	if ev := next(subB2, "b2"); ev.Type != Result || len(ev.Records) != 2 {
		t.Fatalf("b2: %+v", ev)
	}
	go func() {
		wrote <- st.Update(func(b *store.Batch) error { b.SetHidden("b", "y", true, nil); return nil })
	}()
	if ev := next(subB2, "b2 after the hide"); ev.Type != Remove || ev.Record.ID != "y" {
		t.Fatalf("b2: %+v", ev)
	}
	select {
	case r := <-res:
		t.Fatalf("the resumption ended before its fsync: %v", r.err)
	default:
	}
	unblock()
	for range 2 {
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
	}
	var r resumed
	select {
	case r = <-res:
	case <-ctx.Done():
		t.Fatal("the resumption never ended")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.sub.Close()
	// Replayed onto the result at evB.ID, the events give b's result now:
	// x changed, y gone, and the last event carries an id.
	state := map[string]string{}
	for _, rec := range evB.Records {
		state[rec.ID] = string(rec.Fields["n"])
	}
	var got []string
	for {
		ev := next(r.sub, "resumed")
		got = append(got, ev.Type+" "+ev.Record.ID)
		switch ev.Type {
		case Add, Change:
			state[ev.Record.ID] = string(ev.Record.Fields["n"])
		case Remove:
			delete(state, ev.Record.ID)
		default:
			t.Fatalf("resumed: %+v, want incremental events", ev)
		}
		if ev.ID != "" {
			break
		}
	}
	if len(state) != 1 || state["x"] != string(crdt.MustValue(int64(2))) {
		t.Fatalf("resumed: events %q leave %v, want x at 2 alone", got, state)
	}
}
