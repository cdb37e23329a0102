// Package replicacore is the core of one running replica, under package
// replica (on which the daemon's agent is built, through the seam
// internal/replicaopt): the clock restored from the store, the host
// (internal/node) with its write pipeline, the replication engine wired
// to it, gossip (pushes forwarded to the engine, alive members as sync
// partners), and the lifecycle: the sync listener served, the engine's
// triggers run, and everything stopped in order (listener, engine,
// gossip leaving the cluster, goroutines). On a hub whose assembly
// wires no judge of remote writes (an embedded hub), JudgeSystemTables
// wires the one every hub runs on the system tables.
//
// The core opens no store (the caller does, with its options) and closes
// none. Like internal/node it has no HTTP and reads no flags. Only
// package replica imports it (internal/archtest).
package replicacore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Options build a Core on an open store.
type Options struct {
	Store *store.Store
	// ClockOffset skews the physical clock (testing only).
	ClockOffset time.Duration
	// MaxClockOffset bounds how far ahead of local time a remote stamp
	// may be.
	MaxClockOffset time.Duration
	// Policies and Hub: node.Options.
	Policies map[string]string
	Hub      bool
	Log      hclog.Logger
}

// Core is one replica's running core. Its fields are set by New,
// JoinGossip, NewEngine and Start; read them, do not replace them.
type Core struct {
	Store  *store.Store
	Clock  *hlc.Clock
	Node   *node.Node
	Engine *replication.Engine
	Gossip *gossip.Gossip // nil without gossip
	// SyncLn is the sync listener (nil: the replica only dials). Set it
	// before Start; Stop closes it, started or not.
	SyncLn net.Listener

	log    hclog.Logger
	enf    *node.Enforcer // a hub's judge of system-table writes (systables.go); nil: none here
	engMu  sync.Mutex     // Engine, for gossip's handler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds the clock (restored to the store's high-water mark) and the
// host on o.Store.
func New(o Options) *Core {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	c := &Core{Store: o.Store, log: o.Log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	offset := o.ClockOffset.Milliseconds()
	c.Clock = hlc.NewClock(func() int64 { return hlc.SystemClock() + offset }, o.MaxClockOffset)
	c.Clock.Restore(o.Store.HighWater())
	c.Node = node.New(node.Options{Store: o.Store, Clock: c.Clock, Policies: o.Policies, Hub: o.Hub})
	return c
}

// Context is done when Stop begins: the goroutines started with Go
// return on it.
func (c *Core) Context() context.Context { return c.ctx }

// JoinGossip joins the gossip cluster with g (its OnMessage is the
// core's: a push goes to the engine once there is one) and makes ecfg
// use it: alive members as partners (Members), pushes broadcast over it.
func (c *Core) JoinGossip(g gossip.Config, ecfg *replication.Config) error {
	g.OnMessage = func(from string, payload []byte) {
		c.engMu.Lock()
		e := c.Engine
		c.engMu.Unlock()
		if e != nil {
			n, _ := hlc.ParseNodeID(from) // a member's name is its node id
			e.HandlePushFrom(n, payload)
		}
	}
	gs, err := gossip.New(g)
	if err != nil {
		return err
	}
	c.Gossip = gs
	ecfg.Members = c.Members
	ecfg.Broadcast = gs.Broadcast
	ecfg.MaxBroadcast = gs.MaxPayload()
	return nil
}

// NewEngine builds the replication engine from ecfg, with the host's
// hooks (ApplyHook, OnApplied) unless ecfg sets its own, and makes it
// the host's notifier of local writes. A store lacking a capability
// the scope needs is an error (replication.NewEngineChecked).
func (c *Core) NewEngine(ecfg replication.Config) (*replication.Engine, error) {
	if ecfg.Local.ApplyHook == nil {
		ecfg.Local.ApplyHook = c.Node.ApplyHook()
	}
	if ecfg.Local.OnApplied == nil {
		ecfg.Local.OnApplied = c.Node.RemoteApplied()
	}
	e, err := replication.NewEngineChecked(ecfg)
	if err != nil {
		return nil, err
	}
	c.engMu.Lock()
	c.Engine = e
	c.engMu.Unlock()
	c.Node.SetEngine(e)
	return e, nil
}

// Start carries out the system tables' write-backs left queued (if
// JudgeSystemTables wired them), serves the sync listener (if any) and
// runs the engine's triggers and the index declarations' loop until Stop.
func (c *Core) Start() {
	c.replay()
	if ln := c.SyncLn; ln != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.Engine.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				c.log.Error("sync listener stopped", "error", err)
			}
		}()
	}
	c.Go(c.Engine.Run)
	c.Go(c.runIndexes) // the declared indexes kept (indexes.go)
}

// Go runs fn in a goroutine Stop waits for; fn returns when its context
// is done.
func (c *Core) Go(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); fn(c.ctx) }()
}

// Members maps alive gossip members to sync partners (not this node).
func (c *Core) Members() []replication.Partner {
	var out []replication.Partner
	self := c.Store.NodeID()
	for _, m := range c.Gossip.Members() {
		if m.State != gossip.StateAlive || m.Meta.SyncAddr == "" {
			continue
		}
		n, err := hlc.ParseNodeID(m.Name)
		if err != nil || n == self {
			continue
		}
		out = append(out, replication.Partner{Addr: m.Meta.SyncAddr, Node: n, Role: string(m.Meta.Role)})
	}
	return out
}

// GossipAddr is the gossip address, "off" without gossip.
func (c *Core) GossipAddr() string {
	if c.Gossip == nil {
		return "off"
	}
	return c.Gossip.Addr()
}

// Stop stops everything Start and Go started, in order: the context, the
// sync listener, the engine, gossip (leaving the cluster), then waits for
// the goroutines. It leaves the store open. Later calls do nothing.
func (c *Core) Stop() {
	c.once.Do(func() {
		c.cancel()
		if c.SyncLn != nil {
			c.SyncLn.Close()
		}
		if c.Engine != nil {
			c.Engine.Close()
		}
		if c.Gossip != nil {
			if err := c.Gossip.Leave(time.Second); err != nil {
				c.log.Debug("gossip leave", "error", err)
			}
			c.Gossip.Shutdown()
		}
		c.wg.Wait()
	})
}
