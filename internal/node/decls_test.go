package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// TestPublishDecls: PublishIndexes and PublishViews write what differs
// (nothing when the tables hold the declarations already) and delete what
// is no longer declared; the declarations read back skip malformed
// records and follow every change.
func TestPublishDecls(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "d", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := New(Options{Store: st, Clock: hlc.NewClock(nil, time.Minute), Hub: true})
	ixs := []store.IndexDef{{Name: "a", Table: "t", Fields: []string{"x", "y"}}, {Name: "b", Table: "u", Fields: []string{"z"}}}
	views := []ViewDef{{Name: "v", Table: "t", Where: "x == device.user", Order: []string{"-y"}}}
	if err := n.PublishIndexes(ixs); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishViews(views); err != nil {
		t.Fatal(err)
	}
	head := st.FeedHead()
	if err := n.PublishIndexes(ixs); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishViews(views); err != nil {
		t.Fatal(err)
	}
	if st.FeedHead() != head {
		t.Fatalf("publishing the same declarations again wrote %d changes", st.FeedHead()-head)
	}
	// A malformed record (not from PublishIndexes) is not a declaration.
	if _, err := n.Write(IndexTable, "bad", []crdt.FieldValue{{Name: "table", Value: crdt.MustValue("t")}, {Name: "fields", Value: crdt.MustValue("x")}}, false, nil); err != nil {
		t.Fatal(err)
	}
	got, err := n.DeclaredIndexes()
	if err != nil || !reflect.DeepEqual(got, ixs) {
		t.Fatalf("DeclaredIndexes: %+v %v", got, err)
	}
	if got, err := n.DeclaredViews(); err != nil || !reflect.DeepEqual(got, views) {
		t.Fatalf("DeclaredViews: %+v %v", got, err)
	}
	// Changed and removed.
	ixs = []store.IndexDef{{Name: "b", Table: "u", Fields: []string{"z", "w"}}}
	if err := n.PublishIndexes(ixs); err != nil {
		t.Fatal(err)
	}
	if err := n.PublishViews(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := n.DeclaredIndexes(); err != nil || !reflect.DeepEqual(got, ixs) {
		t.Fatalf("DeclaredIndexes after the change: %+v %v", got, err)
	}
	if _, err := n.DeclaredView("v"); err == nil {
		t.Fatal("the removed view is still declared")
	}
	if rec, err := st.Get(IndexTable, "bad"); err == nil && rec.Exists() {
		t.Fatal("the malformed declaration, not in the configuration, is left")
	}
	// Declared again after its removal.
	if err := n.PublishViews(views); err != nil {
		t.Fatal(err)
	}
	if got, err := n.DeclaredViews(); err != nil || !reflect.DeepEqual(got, views) {
		t.Fatalf("DeclaredViews declared again: %+v %v", got, err)
	}
	if err := n.PublishIndexes([]store.IndexDef{{Name: "c", Table: "t"}}); err == nil {
		t.Fatal("an index without fields was published")
	}
}

// TestPublishDeclsTwoHubs: in a cluster of hubs, a hub removes only the
// declarations it published (and those with no publisher, written by
// older versions); one publishing other declarations, or none, leaves
// another hub's in place, and a hub restarted without a declaration it
// published removes it everywhere. Two hubs declaring one name: the last
// write wins.
func TestPublishDeclsTwoHubs(t *testing.T) {
	open := func(name string) (*store.Store, *hlc.Clock) {
		st, err := store.Open(store.Options{Dir: name, FS: vfs.NewMem(), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, hlc.NewClock(nil, time.Minute)
	}
	stA, clkA := open("a")
	stB, clkB := open("b")
	// A hub node whose every write reaches the other hub at once (as a
	// session would bring it).
	hub := func(st *store.Store, clk *hlc.Clock, to *store.Store, toClk *hlc.Clock) *Node {
		n := New(Options{Store: st, Clock: clk, Hub: true})
		n.OnWritten("peer", func(w *crdt.Write) {
			if _, err := to.ApplyRemote(toClk, []*crdt.Write{w}, nil); err != nil {
				t.Fatal(err)
			}
		})
		return n
	}
	a, b := hub(stA, clkA, stB, clkB), hub(stB, clkB, stA, clkA)
	x := store.IndexDef{Name: "x", Table: "t", Fields: []string{"f"}}
	y := store.IndexDef{Name: "y", Table: "t", Fields: []string{"g"}}
	v := ViewDef{Name: "v", Table: "t", Where: "f == 1", Order: []string{"g"}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, ixs []store.IndexDef, views []ViewDef) {
		t.Helper()
		for name, n := range map[string]*Node{"A": a, "B": b} {
			gotIx, err := n.DeclaredIndexes()
			must(err)
			gotV, err := n.DeclaredViews()
			must(err)
			if len(gotIx) != len(ixs) || len(ixs) > 0 && !reflect.DeepEqual(gotIx, ixs) {
				t.Fatalf("%s: hub %s declares indexes %+v, want %+v", when, name, gotIx, ixs)
			}
			if len(gotV) != len(views) || len(views) > 0 && !reflect.DeepEqual(gotV, views) {
				t.Fatalf("%s: hub %s declares views %+v, want %+v", when, name, gotV, views)
			}
		}
	}
	must(a.PublishIndexes([]store.IndexDef{x}))
	must(a.PublishViews([]ViewDef{v}))
	check("A published", []store.IndexDef{x}, []ViewDef{v})
	// B starts with no declarations: A's stay.
	must(b.PublishIndexes(nil))
	must(b.PublishViews(nil))
	check("B published none after A", []store.IndexDef{x}, []ViewDef{v})
	// B declares y: both are declared.
	must(b.PublishIndexes([]store.IndexDef{y}))
	check("B declared y", []store.IndexDef{x, y}, []ViewDef{v})
	// A restarts without x: x is removed everywhere, B's y and A's v stay.
	a = hub(stA, clkA, stB, clkB)
	must(a.PublishIndexes(nil))
	must(a.PublishViews([]ViewDef{v}))
	check("A restarted without x", []store.IndexDef{y}, []ViewDef{v})
	// B declares A's view differently: the last write wins, and A,
	// restarted without it, leaves B's.
	v2 := ViewDef{Name: "v", Table: "t", Where: "f == 2", Order: []string{"g"}}
	must(b.PublishViews([]ViewDef{v2}))
	check("B declared v differently", []store.IndexDef{y}, []ViewDef{v2})
	must(a.PublishViews(nil))
	check("A restarted without v", []store.IndexDef{y}, []ViewDef{v2})
	// A declaration with no publisher (an older version's) is removed by
	// any hub not declaring it.
	_, err := a.Write(IndexTable, "old", []crdt.FieldValue{{Name: "table", Value: crdt.MustValue("t")},
		{Name: "fields", Value: crdt.MustValue([]any{"h"})}}, false, nil)
	must(err)
	check("an old declaration written", []store.IndexDef{{Name: "old", Table: "t", Fields: []string{"h"}}, y}, []ViewDef{v2})
	must(b.PublishIndexes([]store.IndexDef{y}))
	check("B removed the old declaration", []store.IndexDef{y}, []ViewDef{v2})
}
