package syncround

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// fakeEngine is an Engine whose partners the test sets; each SyncWith
// is counted and may change them (the arbiter's decisions arriving).
type fakeEngine struct {
	mu       sync.Mutex
	partners []replication.PartnerStatus
	offline  bool
	syncs    int
	onSync   func(n int, ps []replication.PartnerStatus) // called with the lock held
}

func (e *fakeEngine) Partners() []replication.PartnerStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]replication.PartnerStatus(nil), e.partners...)
}

func (e *fakeEngine) Online() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.offline
}

func (e *fakeEngine) SyncWith(ctx context.Context, addr string) (replication.Stats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncs++
	if e.onSync != nil {
		e.onSync(e.syncs, e.partners)
	}
	return replication.Stats{}, nil
}

func (e *fakeEngine) syncCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.syncs
}

// newNode returns a device whose policies are pols (published into the
// policy table: own write 1 when pols is not empty) and that then wrote
// records r0.. to table "jobs" (own writes 2..writes+1).
func newNode(t *testing.T, pols map[string]string, writes int) *node.Node {
	t.Helper()
	st, err := store.Open(store.Options{Dir: "d", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := node.New(node.Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	if err := n.PublishPolicies(pols); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < writes; i++ {
		write(t, n, "r"+string(rune('0'+i)))
	}
	return n
}

func write(t *testing.T, n *node.Node, id string) {
	t.Helper()
	if _, err := n.Write("jobs", id, []crdt.FieldValue{{Name: "v", Value: crdt.MustValue(id)}}, false, nil); err != nil {
		t.Fatal(err)
	}
}

func arbiter(decided uint64, lastErr string) replication.PartnerStatus {
	return replication.PartnerStatus{Addr: "hub:1", Role: "hub", Arbiter: true, Decided: decided, LastError: lastErr}
}

// bounded returns a context that ends a wait a broken test would
// otherwise sit through (the waits here are a minute when they should
// not be reached).
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func noRound(context.Context) api.Summary { return api.Summary{Partners: 1, Succeeded: 1} }

// TestRunDecisions: the state a sync reports of the arbiter's decisions
// on the device's earlier writes, by the partners it knows, the policies
// it holds and what the arbiter has decided.
func TestRunDecisions(t *testing.T) {
	cw := map[string]string{"jobs": "client-wins"}
	for _, tc := range []struct {
		name       string
		pols       map[string]string
		writes     int
		partners   []replication.PartnerStatus
		offline    bool
		wait       time.Duration
		wantState  string
		wantCount  int
		wantDetail string
		wantSyncs  bool // asked the arbiter at least once
	}{
		{name: "no arbiter, lww only", pols: map[string]string{"jobs": "lww"}, writes: 2, wantState: "none"},
		{name: "no arbiter, non-arbiter hub", pols: map[string]string{"jobs": "lww"}, writes: 2,
			partners: []replication.PartnerStatus{{Addr: "hub:1", Role: "hub"}}, wantState: "none"},
		{name: "no arbiter, client-wins table", pols: cw, writes: 2, wantState: "tentative", wantDetail: "no arbitrating hub"},
		{name: "no arbiter, server-wins table", pols: map[string]string{"jobs": "lww", "other": "server-wins"}, writes: 2,
			wantState: "tentative", wantDetail: "no arbitrating hub"},
		{name: "highest mark of two arbiters", pols: cw, writes: 3, wait: time.Minute,
			partners: []replication.PartnerStatus{arbiter(4, ""), {Addr: "hub:2", Role: "hub", Arbiter: true, Decided: 1}}, wantState: "decided"},
		{name: "arbiter has decided all", pols: cw, writes: 3, partners: []replication.PartnerStatus{arbiter(4, "")}, wantState: "decided"},
		{name: "lww writes need no decision", pols: map[string]string{"jobs": "lww", "other": "server-wins"}, writes: 3,
			partners: []replication.PartnerStatus{arbiter(0, "")}, wantState: "decided"},
		{name: "offline", pols: cw, writes: 3, partners: []replication.PartnerStatus{arbiter(2, "")}, offline: true,
			wait: time.Minute, wantState: "undecided", wantCount: 2, wantDetail: "offline"},
		{name: "arbiter unreachable", pols: cw, writes: 3, partners: []replication.PartnerStatus{arbiter(1, "connection refused")},
			wait: time.Minute, wantState: "undecided", wantCount: 3, wantDetail: "unreachable: hub:1: connection refused"},
		{name: "one of two arbiters reachable: waits", pols: cw, writes: 3,
			partners: []replication.PartnerStatus{arbiter(1, "connection refused"), {Addr: "hub:2", Role: "hub", Arbiter: true, Decided: 2}},
			wait:     100 * time.Millisecond, wantState: "undecided", wantCount: 2, wantDetail: "within 100ms", wantSyncs: true},
		{name: "wait ends undecided", pols: cw, writes: 3, partners: []replication.PartnerStatus{arbiter(1, "")},
			wait: 150 * time.Millisecond, wantState: "undecided", wantCount: 3, wantDetail: "within 150ms", wantSyncs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.pols, tc.writes)
			eng := &fakeEngine{partners: tc.partners, offline: tc.offline}
			s := New(n, node.NewOutbound(0), false, hclog.NewNullLogger())
			start := time.Now()
			sum := s.Run(bounded(t), eng, tc.wait, noRound)
			took := time.Since(start)
			d := sum.Decisions
			if d == nil {
				t.Fatal("a device's sync reports no decisions")
			}
			if d.State != tc.wantState || d.Count != tc.wantCount || !strings.Contains(d.Detail, tc.wantDetail) {
				t.Fatalf("decisions %+v, want state %s count %d detail containing %q", d, tc.wantState, tc.wantCount, tc.wantDetail)
			}
			if len(d.Undecided) != tc.wantCount {
				t.Fatalf("%d undecided listed, want %d", len(d.Undecided), tc.wantCount)
			}
			for _, u := range d.Undecided {
				if u.Table != "jobs" {
					t.Fatalf("undecided %+v: want only writes to the client-wins table", u)
				}
			}
			if got := eng.syncCount() > 0; got != tc.wantSyncs {
				t.Fatalf("asked the arbiter %d times, want asked: %v", eng.syncCount(), tc.wantSyncs)
			}
			if tc.wantState == "undecided" && tc.wantSyncs {
				if d.WaitedMs < tc.wait.Milliseconds() {
					t.Fatalf("waited %dms, want at least the wait %v", d.WaitedMs, tc.wait)
				}
				if took > tc.wait+2*time.Second {
					t.Fatalf("took %v, want bounded by the wait %v", took, tc.wait)
				}
			}
			if sum.Partners != 1 || sum.Millis < d.WaitedMs {
				t.Fatalf("summary %+v: want the round's, with the wait added to millis", sum)
			}
		})
	}
}

// TestRunWaitEndsWhenDecided: the wait asks the arbiter until its
// Decided mark passes the device's writes, and ends then, well before
// its bound.
func TestRunWaitEndsWhenDecided(t *testing.T) {
	n := newNode(t, map[string]string{"jobs": "server-wins"}, 3)
	eng := &fakeEngine{partners: []replication.PartnerStatus{arbiter(1, "")}}
	eng.onSync = func(k int, ps []replication.PartnerStatus) {
		if k == 3 { // the decisions arrive with the third session
			ps[0].Decided = 4
		}
	}
	s := New(n, node.NewOutbound(0), false, hclog.NewNullLogger())
	const wait = time.Minute
	start := time.Now()
	sum := s.Run(bounded(t), eng, wait, noRound)
	if took := time.Since(start); took > wait/2 {
		t.Fatalf("took %v: the wait did not end when the decisions arrived", took)
	}
	if d := sum.Decisions; d.State != "decided" || d.Count != 0 || len(d.Undecided) != 0 {
		t.Fatalf("decisions %+v, want decided", d)
	}
	if got := eng.syncCount(); got != 3 {
		t.Fatalf("asked the arbiter %d times, want 3 (until the decisions arrived)", got)
	}
}

// TestRunWaitsOnlyForEarlierWrites: writes made during the round are not
// waited for; a canceled context ends the wait.
func TestRunWaitsOnlyForEarlierWrites(t *testing.T) {
	n := newNode(t, map[string]string{"jobs": "client-wins"}, 2)
	eng := &fakeEngine{partners: []replication.PartnerStatus{arbiter(3, "")}}
	s := New(n, node.NewOutbound(0), false, hclog.NewNullLogger())
	sum := s.Run(bounded(t), eng, time.Minute, func(context.Context) api.Summary {
		write(t, n, "during")
		return api.Summary{}
	})
	if d := sum.Decisions; d.State != "decided" {
		t.Fatalf("decisions %+v: a write made during the round was waited for", d)
	}
	// The write made during that round is this sync's: with the context
	// canceled, it ends at once, undecided.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	sum = s.Run(ctx, eng, time.Minute, noRound)
	if d := sum.Decisions; d.State != "undecided" || d.Count != 1 || d.Undecided[0].ID != "during" {
		t.Fatalf("decisions %+v, want the write made during the last round undecided", d)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("took %v with the context canceled", took)
	}
}

// TestRunHubAndSyncErrors: a hub waits for no decisions; each sync lists
// the sync errors logged since the previous one listed them (those logged
// before the syncer was made count as shown).
func TestRunHubAndSyncErrors(t *testing.T) {
	n := newNode(t, nil, 0)
	logErr := func(rec string) {
		t.Helper()
		if _, err := n.Store().AppendSyncError(&store.SyncError{Table: "jobs", Record: rec, Policy: "server-wins", Kind: "rejected"}); err != nil {
			t.Fatal(err)
		}
	}
	logErr("before")
	eng := &fakeEngine{partners: []replication.PartnerStatus{arbiter(0, "")}}
	s := New(n, node.NewOutbound(0), true, hclog.NewNullLogger())
	for i, step := range []struct {
		log  []string
		want []string
	}{
		{want: nil},
		{log: []string{"a", "b"}, want: []string{"a", "b"}},
		{want: nil},
		{log: []string{"c"}, want: []string{"c"}},
	} {
		for _, r := range step.log {
			logErr(r)
		}
		sum := s.Run(context.Background(), eng, time.Minute, noRound)
		if sum.Decisions != nil {
			t.Fatalf("sync %d on a hub: decisions %+v, want none", i, sum.Decisions)
		}
		var got []string
		for _, e := range sum.SyncErrors {
			got = append(got, e.Record)
		}
		if strings.Join(got, ",") != strings.Join(step.want, ",") {
			t.Fatalf("sync %d listed sync errors %v, want %v", i, got, step.want)
		}
	}
	if eng.syncCount() != 0 {
		t.Fatalf("a hub asked the arbiter %d times", eng.syncCount())
	}
}

// TestRunPolicyFromHubAhead: a server-wins policy received from a hub
// whose clock runs a second ahead is in force at once: with no arbiter
// known the device's changes are tentative, not "none".
func TestRunPolicyFromHubAhead(t *testing.T) {
	open := func(name string) *store.Store {
		st, err := store.Open(store.Options{Dir: name, FS: vfs.NewMem(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	clk := hlc.NewClock(nil, time.Minute)
	dev := node.New(node.Options{Store: open("dev"), Clock: clk})
	hub := node.New(node.Options{Store: open("hub"), Clock: hlc.NewClock(func() int64 { return hlc.SystemClock() + 1000 }, time.Minute)})
	if err := hub.PublishPolicies(map[string]string{"jobs": "server-wins"}); err != nil {
		t.Fatal(err)
	}
	var ws []*crdt.Write
	if err := hub.Store().Stream(hub.ID(), 0, func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Store().ApplyRemote(clk, ws, nil); err != nil {
		t.Fatal(err)
	}
	write(t, dev, "r0")
	s := New(dev, node.NewOutbound(0), false, hclog.NewNullLogger())
	sum := s.Run(bounded(t), &fakeEngine{}, time.Minute, noRound)
	if d := sum.Decisions; d.State != "tentative" {
		t.Fatalf("decisions %+v, want tentative (the hub's server-wins policy is in force)", d)
	}
}
