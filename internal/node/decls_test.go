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
