package replicacore

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(store.Options{Dir: "/d", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Stop without Start closes the listener it was given (an agent whose
// opening failed half-way) and leaves the store open; a second Stop does
// nothing.
func TestStopWithoutStart(t *testing.T) {
	st := openStore(t)
	c := New(Options{Store: st})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.SyncLn = ln
	c.Stop()
	c.Stop()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener is open after Stop")
	}
	if _, err := st.Get("t", "x"); err == nil || err == store.ErrClosed {
		t.Fatalf("store after Stop: %v, want open (not found)", err)
	}
}

// Started, the core serves sessions on its listener and Stop ends the
// goroutines of Start and Go.
func TestStartServeStop(t *testing.T) {
	hub := New(Options{Store: openStore(t), Hub: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub.SyncLn = ln
	mustEngine(t, hub, replication.Config{Local: replication.Local{Node: hub.Store.NodeID(), Role: "hub", Scope: replication.FullScope(), Clock: hub.Clock, Store: hub.Store}})
	hub.Start()
	ran := make(chan struct{})
	hub.Go(func(ctx context.Context) { <-ctx.Done(); close(ran) })

	dev := New(Options{Store: openStore(t)})
	mustEngine(t, dev, replication.Config{Local: replication.Local{Node: dev.Store.NodeID(), Role: "device", Scope: replication.FullScope(), Clock: dev.Clock, Store: dev.Store}, Hubs: []string{ln.Addr().String()}})
	if _, err := dev.Node.Write("jobs", "j1", nil, true, nil); err != nil {
		t.Fatal(err)
	}
	sum := dev.Engine.SyncNow(context.Background(), nil)
	if sum.Succeeded != 1 {
		t.Fatalf("sync with the core's listener: %+v", sum)
	}
	if rec, err := hub.Store.Get("jobs", "j1"); err != nil || rec.Exists() {
		t.Fatalf("the device's delete on the hub: %v %v", rec, err)
	}
	hub.Stop()
	select {
	case <-ran:
	default:
		t.Fatal("Stop returned before a Go goroutine ended")
	}
	dev.Stop()
}

func mustEngine(t *testing.T, c *Core, ecfg replication.Config) *replication.Engine {
	t.Helper()
	e, err := c.NewEngine(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// bareStore has only the methods of replication.Store: none of the
// optional capabilities.
type bareStore struct{ replication.Store }

// A store lacking what the scope needs fails NewEngine, naming what it
// lacks, and leaves no engine behind; it used to be logged only, every
// session then refused. The same store with a full scope is accepted.
func TestNewEngineRefusesMissingCapability(t *testing.T) {
	c := New(Options{Store: openStore(t)})
	filtered := replication.Scope{Tables: []replication.TableScope{{Table: "t",
		Where: []replication.FieldMatch{{Field: "f1", Value: crdt.MustValue("x")}}}}}
	ecfg := replication.Config{Local: replication.Local{Node: c.Store.NodeID(), Role: "device", Scope: filtered,
		Clock: c.Clock, Store: bareStore{c.Store}}}
	e, err := c.NewEngine(ecfg)
	if err == nil || !strings.Contains(err.Error(), "lacks Scan and Tables") || !strings.Contains(err.Error(), "HiddenSkipped") {
		t.Fatalf("NewEngine with a bare store and a filtered scope: %v, want an error naming Scan and HiddenSkipped", err)
	}
	if e != nil || c.Engine != nil {
		t.Fatal("a refused engine was kept")
	}
	c.Stop()

	c = New(Options{Store: openStore(t)})
	ecfg.Local.Node, ecfg.Local.Clock, ecfg.Local.Store = c.Store.NodeID(), c.Clock, bareStore{c.Store}
	ecfg.Local.Scope = replication.FullScope()
	mustEngine(t, c, ecfg)
	c.Stop()
}
