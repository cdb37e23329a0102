package replica

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/internal/replicaopt"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// The seam (internal/replicaopt) the agent opens its replica through:
// the callbacks run in their documented order with the parts built so
// far, a Manual replica serves nothing until Parts.Start, the given
// listener is the one served, hooks registered in Build run before the
// live queries' (a write seen by a Build hook is in the store), and Stop
// runs before the store closes; a failing callback fails Open and
// closes the listener.
func TestSeam(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	var parts *replicaopt.Parts
	var hooked []string
	o := &replicaopt.Options{
		Store:        &store.Options{NoSync: true},
		SyncListener: ln,
		Opened:       func(st *store.Store) error { calls = append(calls, "opened"); return nil },
		Configure: func(p *replicaopt.Parts, ecfg *replication.Config) error {
			calls = append(calls, "configure")
			if p.Node == nil || p.Clock == nil || p.Engine != nil || p.SyncLn != ln {
				t.Errorf("configure: parts %+v", p)
			}
			ecfg.Local.Version = "seam-test"
			return nil
		},
		Gossip: func(g *gossip.Config) { calls = append(calls, "gossip") },
		Build: func(p *replicaopt.Parts, ecfg *replication.Config) error {
			calls = append(calls, "build")
			if p.Gossip == nil || p.Engine != nil {
				t.Errorf("build: gossip %v engine %v", p.Gossip, p.Engine)
			}
			p.Node.OnWritten("seam", func(w *crdt.Write) { hooked = append(hooked, w.ID) })
			return nil
		},
		Manual: true,
		Start:  func(ctx context.Context, p *replicaopt.Parts) { calls = append(calls, "start") },
		Stop: func(p *replicaopt.Parts) {
			calls = append(calls, "stop")
			if _, err := p.Store.Get("jobs", "a"); err != nil {
				t.Errorf("stop: the store is closed already: %v", err)
			}
		},
	}
	r, err := Open(replicaopt.NewContext(ctx, o), Config{DataDir: t.TempDir(), Role: "hub", GossipAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	parts = o.Parts
	if r.SyncAddr() != ln.Addr().String() || parts.Engine == nil {
		t.Fatalf("sync addr %s, want %s; engine %v", r.SyncAddr(), ln.Addr(), parts.Engine)
	}
	if want := []string{"opened", "configure", "gossip", "build"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("before Start: %v, want %v", calls, want)
	}
	if err := parts.Start(); err != nil {
		t.Fatal(err)
	}
	parts.Start() // later calls do nothing
	if err := r.Put(ctx, "jobs", "a", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hooked, []string{"a"}) {
		t.Fatalf("the Build hook saw %v", hooked)
	}
	dev := open(t, Config{Hubs: []string{r.SyncAddr()}})
	if err := dev.Sync(ctx); err != nil {
		t.Fatalf("syncing with the started replica: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"opened", "configure", "gossip", "build", "start", "stop"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}

	// A failing callback fails Open and closes what it opened.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	bad := errors.New("no")
	o2 := &replicaopt.Options{SyncListener: ln2, Opened: func(*store.Store) error { return bad }}
	if _, err := Open(replicaopt.NewContext(ctx, o2), Config{DataDir: t.TempDir()}); !errors.Is(err, bad) {
		t.Fatalf("Open with a failing Opened: %v", err)
	}
	if c, err := net.Dial("tcp", ln2.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener handed to a failed Open still accepts")
	}
}
