package replica

import (
	"context"
	"reflect"
	"testing"
)

// TestDeclarationsTwoHubs: two embedded hubs of one cluster, A declaring
// an index and a view, B none. B, restarted after it synced A's
// declarations, leaves them in place (on both hubs); A, restarted
// without its index, removes it everywhere and keeps its view.
func TestDeclarationsTwoHubs(t *testing.T) {
	ctx := context.Background()
	x := Index{Name: "x", Table: "jobs", Fields: []string{"status"}}
	v := View{Name: "v", Table: "jobs", Where: "status == 'open'", Order: []string{"status"}}
	dirA, dirB := t.TempDir(), t.TempDir()
	openHub := func(dir, addr string, hubs []string, ixs []Index, views []View) *Replica {
		t.Helper()
		r, err := Open(ctx, Config{DataDir: dir, Role: RoleHub, SyncAddr: addr, Hubs: hubs, NoSync: true, Indexes: ixs, Views: views})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := openHub(dirA, "127.0.0.1:0", nil, []Index{x}, []View{v})
	addrA := a.SyncAddr()
	defer func() { a.Close() }()
	b := openHub(dirB, "", []string{addrA}, nil, nil)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	names := func(r *Replica) (ixs, views []string) {
		ixs, views = []string{}, []string{}
		ds, err := r.n.DeclaredIndexes() // Indexes lists those the store keeps too, until dropped
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ds {
			ixs = append(ixs, i.Name)
		}
		for _, w := range r.Views() {
			views = append(views, w.Name)
		}
		return ixs, views
	}
	check := func(when string, r *Replica, ixs, views []string) {
		t.Helper()
		gi, gv := names(r)
		if !reflect.DeepEqual(gi, ixs) || !reflect.DeepEqual(gv, views) {
			t.Fatalf("%s: hub %s declares indexes %v and views %v, want %v and %v", when, r.NodeID(), gi, gv, ixs, views)
		}
	}
	check("B synced", b, []string{"x"}, []string{"v"})
	// B restarts, still declaring nothing: A's declarations stay.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openHub(dirB, "", []string{addrA}, nil, nil)
	defer func() { b.Close() }()
	check("B restarted", b, []string{"x"}, []string{"v"})
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("B restarted and synced", a, []string{"x"}, []string{"v"})
	// A restarts without x: x is removed, on B too once it synced.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = openHub(dirA, addrA, nil, nil, []View{v})
	check("A restarted without x", a, []string{}, []string{"v"})
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("A restarted without x, B synced", b, []string{}, []string{"v"})
}
