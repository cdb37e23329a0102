package node

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// TestPolicyCacheFollowsChanges: PolicyOf and PolicyAt read the policy
// table through a cache; a change made locally, received from a peer or
// merged whole is seen at the next call.
func TestPolicyCacheFollowsChanges(t *testing.T) {
	open := func(name string) *store.Store {
		st, err := store.Open(store.Options{Dir: name, FS: vfs.NewMem(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st, hub := open("dev"), open("hub")
	// The hub's clock runs a second ahead, so its changes win over the
	// device's concurrent one.
	clk := hlc.NewClock(nil, time.Minute)
	hubClk := hlc.NewClock(func() int64 { return hlc.SystemClock() + 1000 }, time.Minute)
	r := New(Options{Store: st, Clock: clk})
	set := func(s *store.Store, c *hlc.Clock, p string) *crdt.Write {
		t.Helper()
		v := crdt.MustValue(p)
		w, err := s.Write(c, PolicyTable, "jobs", []crdt.FieldValue{{Name: HistoryField(c.Now()), Value: v}, {Name: "policy", Value: v}}, false)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if k := r.PolicyOf("jobs"); k != policy.LWW {
		t.Fatalf("no policy record: %v, want lww", k)
	}
	set(st, clk, "server-wins")
	if k := r.PolicyOf("jobs"); k != policy.ServerWins {
		t.Fatalf("after a local change: %v, want server-wins", k)
	}
	if k := r.PolicyAt("jobs", clk.Now()); k != policy.ServerWins {
		t.Fatalf("PolicyAt after a local change: %v, want server-wins", k)
	}
	// A change made on the hub, applied as a remote write.
	w := set(hub, hubClk, "manual")
	if _, err := st.ApplyRemote(clk, []*crdt.Write{w}, nil); err != nil {
		t.Fatal(err)
	}
	if k := r.PolicyOf("jobs"); k != policy.Manual {
		t.Fatalf("after a remote change: %v, want manual", k)
	}
	// A change merged whole (a whole-record fetch).
	set(hub, hubClk, "client-wins")
	rec, err := hub.Get(PolicyTable, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MergeRecord(clk, PolicyTable, "jobs", rec); err != nil {
		t.Fatal(err)
	}
	if k := r.PolicyOf("jobs"); k != policy.ClientWins {
		t.Fatalf("after a merged record: %v, want client-wins", k)
	}
	if k := r.PolicyOf("other"); k != policy.LWW {
		t.Fatalf("another table: %v, want lww", k)
	}
}

// BenchmarkPolicyOf is the policy look-up every API write and view makes.
func BenchmarkPolicyOf(b *testing.B) {
	st, err := store.Open(store.Options{Dir: "d", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := New(Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	b.ReportAllocs()
	for b.Loop() {
		if r.PolicyOf("jobs") != policy.LWW {
			b.Fatal("want lww")
		}
	}
}

// TestPolicyOfAllocatesNothing: PolicyOf allocates nothing once the policy table is cached: every
// API write and view asks.
func TestPolicyOfAllocatesNothing(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "d", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := New(Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	r.PolicyOf("jobs")
	if n := testing.AllocsPerRun(200, func() { r.PolicyOf("jobs") }); n != 0 {
		t.Errorf("PolicyOf: %.0f allocations, want 0", n)
	}
}
