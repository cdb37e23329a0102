package replica

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/replicad/replicad/replication"
)

// waitFor waits up to 10 s for cond, syncing r between tries.
func waitFor(t *testing.T, r *Replica, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s (indexes %+v, views %+v)", what, r.Indexes(), r.Views())
		}
		if err := r.Sync(context.Background()); err != nil {
			t.Logf("sync: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(res *Result) []string {
	out := []string{}
	for _, rec := range res.Records {
		out = append(out, rec.ID)
	}
	return out
}

// TestDeclarationsDistributed: a hub's indexes and views reach a device
// through a sync; the device builds the index (its queries use it) and
// runs the view with its own attributes; a changed declaration rebuilds
// the index, a removed one drops it everywhere.
func TestDeclarationsDistributed(t *testing.T) {
	ctx := context.Background()
	hubDir := t.TempDir()
	openHub := func(addr string, ixs []Index, views []View) *Replica {
		r, err := Open(ctx, Config{DataDir: hubDir, Role: RoleHub, SyncAddr: addr, NoSync: true, Indexes: ixs, Views: views})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ix := Index{Name: "owner_start", Table: "bookings", Fields: []string{"owner", "start"}}
	view := View{Name: "my_open_bookings", Table: "bookings", Where: "owner == device.user && status != 'completed'", Order: []string{"start"}}
	hub := openHub("127.0.0.1:0", []Index{ix}, []View{view})
	addr := hub.SyncAddr()
	defer func() { hub.Close() }()
	if got := hub.Views(); !reflect.DeepEqual(got, []View{view}) {
		t.Fatalf("hub's views: %+v", got)
	}
	dev := open(t, Config{Hubs: []string{addr}, Device: map[string]string{"user": "ann"}})
	for i, b := range []struct{ owner, start, status string }{
		{"ann", "09:00", "open"}, {"bob", "08:00", "open"}, {"ann", "07:00", "completed"},
		{"ann", "06:00", "open"}, {"bob", "10:00", "completed"},
	} {
		if err := dev.Put(ctx, "bookings", fmt.Sprint("b", i), map[string]any{"owner": b.owner, "start": b.start, "status": b.status}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, dev, "the device builds the declared index", func() bool {
		xs := dev.Indexes()
		return len(xs) == 1 && xs[0].Name == ix.Name && reflect.DeepEqual(xs[0].Fields, ix.Fields) && xs[0].Built && xs[0].Indexed == 5
	})
	if got := dev.Views(); !reflect.DeepEqual(got, []View{view}) {
		t.Fatalf("device's views: %+v", got)
	}
	explain := func(r *Replica) *Plan {
		t.Helper()
		res, err := r.Query(ctx, Query{Table: "bookings", Where: "owner == 'ann'", Order: []string{"start"}, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res); !reflect.DeepEqual(got, []string{"b3", "b2", "b0"}) {
			t.Fatalf("ann's bookings: %v", got)
		}
		return res.Plan
	}
	if p := explain(dev); p.Index != ix.Name || p.Examined != 3 {
		t.Fatalf("device's plan %+v, want index %s examining 3", p, ix.Name)
	}
	// The view, with the device's attributes (Config.Device), or the
	// query's.
	res, err := dev.Query(ctx, Query{View: view.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); !reflect.DeepEqual(got, []string{"b3", "b0"}) {
		t.Fatalf("view for ann: %v", got)
	}
	res, err = dev.Query(ctx, Query{View: view.Name, Device: map[string]string{"user": "bob"}, Limit: 1})
	if err != nil || !reflect.DeepEqual(ids(res), []string{"b1"}) || res.Next != "" {
		t.Fatalf("view for bob: %v %q %v", ids(res), res.Next, err)
	}
	res, err = dev.Query(ctx, Query{View: view.Name, Count: true})
	if err != nil || res.Count != 2 {
		t.Fatalf("view count: %+v %v", res, err)
	}
	if _, err := dev.Query(ctx, Query{View: view.Name, Table: "bookings"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a view and a table: %v, want ErrInvalid", err)
	}
	if _, err := dev.Query(ctx, Query{View: "nope"}); !errors.Is(err, ErrNoView) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown view: %v, want ErrNoView", err)
	}
	// A watch of the view.
	ch, err := dev.Watch(ctx, Query{View: view.Name})
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := waitEvent(t, ch); ev.Type != "result" || len(ev.Records) != 2 {
		t.Fatalf("view watch: %+v", ev)
	}

	// A changed declaration: rebuilt.
	hub.Close()
	ix2 := Index{Name: ix.Name, Table: "bookings", Fields: []string{"owner"}}
	hub = openHub(addr, []Index{ix2}, []View{view})
	waitFor(t, dev, "the device rebuilds the changed index", func() bool {
		xs := dev.Indexes()
		return len(xs) == 1 && reflect.DeepEqual(xs[0].Fields, ix2.Fields) && xs[0].Built
	})
	if p := explain(dev); p.Index != ix.Name {
		t.Fatalf("plan with the changed index %+v", p)
	}
	// Removed: dropped on the device and on the hub.
	hub.Close()
	hub = openHub(addr, nil, nil)
	waitFor(t, dev, "the device drops the removed declarations", func() bool {
		return len(dev.Indexes()) == 0 && len(dev.Views()) == 0
	})
	if p := explain(dev); p.Index != "" || p.Examined != 5 {
		t.Fatalf("plan without the index %+v, want a scan of 5", p)
	}
	if _, err := dev.Query(ctx, Query{View: view.Name}); !errors.Is(err, ErrNoView) {
		t.Fatalf("the removed view: %v", err)
	}
	waitFor(t, hub, "the hub drops its index", func() bool { return len(hub.Indexes()) == 0 })
}

// TestDeviceAttrs: device.* reads the attributes the hub assigned the
// replica (its scope), else Config.Device.
func TestDeviceAttrs(t *testing.T) {
	ctx := context.Background()
	r := open(t, Config{Role: RoleHub, Device: map[string]string{"user": "ann"},
		Views: []View{{Name: "mine", Table: "jobs", Where: "owner == device.user"}}})
	for id, owner := range map[string]string{"j1": "ann", "j2": "bob"} {
		if err := r.Put(ctx, "jobs", id, map[string]any{"owner": owner}); err != nil {
			t.Fatal(err)
		}
	}
	view := func() []string {
		t.Helper()
		res, err := r.Query(ctx, Query{View: "mine"})
		if err != nil {
			t.Fatal(err)
		}
		return ids(res)
	}
	if got := view(); !reflect.DeepEqual(got, []string{"j1"}) {
		t.Fatalf("with Config.Device: %v", got)
	}
	sc := replication.FullScope()
	sc.Device = []replication.Attr{{Name: "user", Value: "bob"}}
	r.engine.SetScope(sc)
	if got := view(); !reflect.DeepEqual(got, []string{"j2"}) {
		t.Fatalf("with the assigned attributes: %v", got)
	}
	if got := r.DeviceAttrs(); !reflect.DeepEqual(got, map[string]string{"user": "bob"}) {
		t.Fatalf("DeviceAttrs: %v", got)
	}
}

// TestBadDeclarations: Config.Indexes and Config.Views are checked at
// Open, which then stores nothing.
func TestBadDeclarations(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"a device declares", Config{Indexes: []Index{{Name: "a", Table: "t", Fields: []string{"f"}}}}},
		{"no fields", Config{Role: RoleHub, Indexes: []Index{{Name: "a", Table: "t"}}}},
		{"a field twice", Config{Role: RoleHub, Indexes: []Index{{Name: "a", Table: "t", Fields: []string{"f", "f"}}}}},
		{"an index twice", Config{Role: RoleHub, Indexes: []Index{{Name: "a", Table: "t", Fields: []string{"f"}}, {Name: "a", Table: "u", Fields: []string{"f"}}}}},
		{"index on a system table", Config{Role: RoleHub, Indexes: []Index{{Name: "a", Table: "_replicad_policy", Fields: []string{"f"}}}}},
		{"bad where", Config{Role: RoleHub, Views: []View{{Name: "v", Table: "t", Where: "owner =="}}}},
		{"bad order", Config{Role: RoleHub, Views: []View{{Name: "v", Table: "t", Order: []string{"a", "a"}}}}},
		{"view on a system table", Config{Role: RoleHub, Views: []View{{Name: "v", Table: "_replicad_index"}}}},
	} {
		c.cfg.DataDir = t.TempDir()
		if r, err := Open(context.Background(), c.cfg); !errors.Is(err, ErrInvalid) {
			if err == nil {
				r.Close()
			}
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
}
