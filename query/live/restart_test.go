package live

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/store"
)

// restartEnv is a model replica whose store can be closed and opened
// again on the same in-memory filesystem, cleanly or after a crash.
type restartEnv struct {
	t   *testing.T
	fs  *vfs.MemFS
	m   *modeltest.Model
	e   *Engine
	rng *rand.Rand
}

func newRestartEnv(t *testing.T, seed uint64, noSync bool) *restartEnv {
	rng := rand.New(rand.NewPCG(seed, 0))
	fs := vfs.NewCrashableMem()
	st, err := store.Open(store.Options{Dir: "/r", FS: fs, NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	r := &modeltest.Replica{S: st, Clock: modeltest.ClockAt(t0)}
	m := modeltest.New(t, rng, r, modeltest.Open(t, "/p", t0+500), modeltest.Open(t, "/q", t0+900))
	env := &restartEnv{t: t, fs: fs, m: m, rng: rng}
	env.e = New(st, Options{Poll: time.Hour, Now: nowFn})
	t.Cleanup(func() {
		env.e.Close()
		env.m.R.S.Close()
	})
	return env
}

// restart closes the engine and the store (cleanly, or as a crash that
// keeps only what was synced) and opens both again.
func (env *restartEnv) restart(crash bool, noSync bool) {
	t := env.t
	env.e.Close()
	fs := env.fs
	if crash {
		fs = env.fs.CrashClone(vfs.CrashCloneCfg{})
	}
	env.m.R.S.Close()
	st, err := store.Open(store.Options{Dir: "/r", FS: fs, NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	env.fs, env.m.R.S = fs, st
	env.e = New(st, Options{Poll: time.Hour, Now: nowFn})
}

// write writes a random record of the model's table locally.
func (env *restartEnv) write() {
	id := fmt.Sprintf("j%02d", env.rng.IntN(modeltest.IDs))
	if env.m.Retired[id] || env.m.R.S.Hidden(modeltest.Table, id) {
		return
	}
	fs, del := env.m.Fields(), env.rng.IntN(8) == 0
	if del {
		fs = nil
	}
	if _, err := env.m.R.S.Write(env.m.R.Clock, modeltest.Table, id, fs, del); err != nil {
		env.t.Fatal(err)
	}
}

// subscribe subscribes to q and returns the client holding its result,
// synced with the engine.
func (env *restartEnv) subscribe(q query.Query) *client {
	sub, err := env.e.Subscribe(q, nil, "")
	if err != nil {
		env.t.Fatal(err)
	}
	c := &client{q: q, sub: sub}
	env.sync(c)
	return c
}

func (env *restartEnv) sync(cs ...*client) {
	if err := env.e.Sync(); err != nil {
		env.t.Fatal(err)
	}
	for _, c := range cs {
		c.drain(env.t, nil)
	}
}

// resume resumes c (its state at c.last) on the engine now; reset
// reports whether the resumption was a reset. It fails unless the
// replay gives the query's result.
func (env *restartEnv) resume(c *client, what string) (reset bool) {
	t := env.t
	t.Helper()
	r := &client{q: c.q, state: cloneState(c.state)}
	sub, err := env.e.Subscribe(c.q, nil, c.last)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r.sub = sub
	ev, ok := peek(sub)
	if !ok {
		// Nothing changed for it: the subscription waits.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := sub.Next(ctx); err != context.DeadlineExceeded {
			t.Fatalf("%s: an event came late: %v", what, err)
		}
	}
	r.drain(t, nil)
	if msg := check(t, env.m.R.S, c.q, r.state); msg != "" {
		t.Fatalf("%s: %+v resumed from %s: %s", what, c.q, c.last, msg)
	}
	return ok && ev.Type == Reset
}

var restartQueries = []query.Query{
	{Table: "t"},
	{Table: "t", Where: "owner == 'a'"},
	{Table: "t", Where: "status == 'open' || prio == 2", Fields: []string{"prio"}},
	{Table: "t", Order: []string{"-prio"}, Limit: 100}, // a window never full
}

// TestLiveResumeAfterRestart: ids issued before the store and the engine
// restart resume incrementally after it (the writes made before and
// after the restart come as change and remove events, replayed onto the
// client's result at the id giving the query's result), unless a scope
// change was made between the id and the restart (a reset).
func TestLiveResumeAfterRestart(t *testing.T) {
	seed := *liveSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-live.seed to repeat)", seed)
	env := newRestartEnv(t, seed, false)
	for i := 0; i < 60; i++ {
		env.m.Step() // every kind of change, scope changes included
	}
	var cs []*client
	for _, q := range restartQueries {
		cs = append(cs, env.subscribe(q))
	}
	for i := 0; i < 20; i++ {
		env.write()
	}
	env.sync(cs...)
	before := map[*client]string{}
	for _, c := range cs {
		before[c] = c.last
	}
	for i := 0; i < 10; i++ {
		env.write()
	}
	env.restart(false, false)
	for i := 0; i < 20; i++ {
		env.write()
	}
	for i, c := range cs {
		if env.resume(c, fmt.Sprintf("seed %d client %d after a restart", seed, i)) {
			t.Fatalf("seed %d client %d %+v: resuming from %s after a restart is a reset", seed, i, c.q, c.last)
		}
	}
	// Changes of every kind after the restart (scope changes the new
	// engine sees) are replayed too.
	for i := 0; i < 60; i++ {
		env.m.Step()
	}
	for i, c := range cs {
		env.resume(c, fmt.Sprintf("seed %d client %d after changes of every kind", seed, i))
	}

	// A scope change between the id and the restart: not kept, a reset.
	cs = cs[:0]
	for _, q := range restartQueries {
		cs = append(cs, env.subscribe(q))
	}
	if err := env.m.R.S.Update(func(b *store.Batch) error {
		b.SetHidden(modeltest.Table, "j99", true, nil)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	env.write()
	env.restart(false, false)
	env.write()
	for i, c := range cs {
		if !env.resume(c, fmt.Sprintf("seed %d client %d, a scope change before the restart", seed, i)) {
			t.Fatalf("seed %d client %d: a scope change before the restart, yet no reset", seed, i)
		}
	}
	// An id of two boots ago still resumes (the boot in between started
	// after everything it showed).
	cs = cs[:0]
	for _, q := range restartQueries {
		cs = append(cs, env.subscribe(q))
	}
	env.write()
	env.restart(false, false)
	env.write()
	env.restart(false, false)
	env.write()
	for i, c := range cs {
		if env.resume(c, fmt.Sprintf("seed %d client %d, two restarts", seed, i)) {
			t.Fatalf("seed %d client %d: resuming across two restarts is a reset", seed, i)
		}
	}
}

// TestLiveResumeAfterCrash: after a crash, an id whose result showed
// only what survived resumes incrementally; one whose result showed a
// write the crash took back (its feed position then numbered again for
// another write) is a reset, and correct.
func TestLiveResumeAfterCrash(t *testing.T) {
	seed := *liveSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-live.seed to repeat)", seed)
	// NoSync: a write is in the feed at once, and lost in a crash until
	// the store flushes or closes.
	env := newRestartEnv(t, seed, true)
	for i := 0; i < 30; i++ {
		env.write()
	}
	env.restart(false, true) // everything durable
	c := env.subscribe(query.Query{Table: "t"})
	env.restart(true, true) // nothing lost: the id resumes
	env.write()
	if env.resume(c, "after a crash that lost nothing") {
		t.Fatalf("seed %d: a crash that lost nothing of the id's result, yet a reset", seed)
	}

	c = env.subscribe(query.Query{Table: "t"})
	// A write the client sees, lost in the crash; then other records
	// written at the same feed positions.
	if _, err := env.m.R.S.Write(env.m.R.Clock, "t", "lost", []crdt.FieldValue{{Name: "x", Value: crdt.MustValue(int64(1))}}, false); err != nil {
		t.Fatal(err)
	}
	env.sync(c)
	if _, ok := c.state["lost"]; !ok {
		t.Fatal("the client did not get the write")
	}
	env.restart(true, true)
	if _, err := env.m.R.S.Get("t", "lost"); err == nil {
		t.Skip("the crash kept the unsynced write: nothing to test")
	}
	for i := 0; i < 5; i++ {
		env.write()
	}
	if !env.resume(c, "after a crash that lost a write it showed") {
		t.Fatalf("seed %d: the id's result showed a write the crash took back, yet no reset", seed)
	}

	// A scope change the client saw (a record hidden), lost in the crash:
	// the record is back, untouched since.
	env.restart(false, true)
	c = env.subscribe(query.Query{Table: "t"})
	var gone string
	for id := range c.state {
		gone = id
		break
	}
	if err := env.m.R.S.Update(func(b *store.Batch) error { b.SetHidden("t", gone, true, nil); return nil }); err != nil {
		t.Fatal(err)
	}
	env.sync(c)
	if _, ok := c.state[gone]; ok {
		t.Fatalf("the client still holds %s, hidden", gone)
	}
	env.restart(true, true)
	if env.m.R.S.Hidden("t", gone) {
		t.Skip("the crash kept the unsynced hide: nothing to test")
	}
	if !env.resume(c, "after a crash that lost a scope change it showed") {
		t.Fatalf("seed %d: the id's result showed a scope change the crash took back, yet no reset", seed)
	}
}

// TestLiveIDDurable: an id of an earlier boot is good when the next boot
// started at or after every position its result may show.
func TestLiveIDDurable(t *testing.T) {
	e := &Engine{boots: []store.Boot{{ID: 1, Feed: 10, Scope: 4}, {ID: 2, Feed: 12, Scope: 5}, {ID: 3, Feed: 12, Scope: 5}}}
	for _, c := range []struct {
		id   eventID
		want bool
	}{
		{eventID{boot: 1, feed: 8, visible: 10, scope: 3, scopeVisible: 4}, true},
		{eventID{boot: 1, feed: 8, visible: 13, scope: 3, scopeVisible: 4}, false}, // a write lost
		{eventID{boot: 1, feed: 8, visible: 9, scope: 3, scopeVisible: 6}, false},  // a scope change lost
		{eventID{boot: 2, feed: 12, visible: 12, scope: 5, scopeVisible: 5}, true},
		{eventID{boot: 3, feed: 40, visible: 50, scope: 9, scopeVisible: 9}, true}, // the current boot
		{eventID{boot: 4, feed: 1, visible: 1}, false},                             // unknown
	} {
		if got := e.durable(c.id); got != c.want {
			t.Errorf("%+v: %v, want %v", c.id, got, c.want)
		}
	}
}
