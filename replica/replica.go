// Package replica is one replicad replica in-process: a Pebble store of
// field-level last-writer-wins records stamped with a hybrid logical
// clock, a sync listener serving anti-entropy sessions, and a replication
// engine that syncs with the hubs (and, with gossip, every member), as
// the agent does, without a daemon or HTTP. An app, a test or a gateway
// links it the way it would link an embedded database:
//
//	r, err := replica.Open(ctx, replica.Config{DataDir: dir, Role: "device",
//		SyncAddr: "127.0.0.1:0", Hubs: []string{hubSyncAddr}})
//	if err != nil { ... }
//	defer r.Close()
//	err = r.Put(ctx, "jobs", "j1", map[string]any{"status": "open", "prio": 3})
//	rec, err := r.Get(ctx, "jobs", "j1") // rec.Fields["status"] == "open"
//	res, err := r.Query(ctx, replica.Query{Table: "jobs", Where: "prio >= 2",
//		Order: []string{"-prio"}, Limit: 50})
//	err = r.Sync(ctx) // one round with every partner
//
// Writes are durable when Put or Delete returns, and are pushed to the
// partners in the background; Sync runs a round with every partner now.
// Reads see this replica's state: a write made elsewhere is seen once a
// session brought it here. Query runs the query language of package
// query (a CEL where clause, an order, a limit and an opaque cursor) on
// one snapshot; Watch keeps a query live (package query/live), and
// WatchFrom resumes a watch after the last event it delivered.
//
// Field values are Go values of JSON's kinds: nil, bool, integers,
// float64, string, []any and map[string]any (and json.Number). Records
// read back hold nil, bool, int64, uint64, float64, string, []any and
// map[string]any.
//
// A Replica is safe for concurrent use. Close stops every goroutine it
// started and closes the store; after Close every method returns
// ErrClosed.
package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/replicacore"
	"github.com/replicad/replicad/internal/replicaopt"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/query/live"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// Errors. Compare with errors.Is.
var (
	// ErrNotFound: the record was never written here, is deleted, or is
	// outside this replica's scope.
	ErrNotFound = errors.New("replica: record not found")
	// ErrClosed: the replica was closed.
	ErrClosed = errors.New("replica: closed")
	// ErrInvalid: a bad table name, record id, field or configuration.
	ErrInvalid = errors.New("replica: invalid")
)

// DefaultClusterID is the cluster of a Config without ClusterID (the
// agent's default too).
const DefaultClusterID = "replicad"

// Roles.
const (
	RoleDevice = "device"
	RoleHub    = "hub"
)

// Config configures Open. DataDir is required; everything else has a
// default.
type Config struct {
	// DataDir holds the store (created if missing). One Replica at a
	// time per directory.
	DataDir string
	// Role is "device" (the default) or "hub". A hub decides when deleted
	// records are collected everywhere, and refuses what a device may not
	// write to the system tables ("_replicad_*": a policy, a declaration),
	// writing back over it, as the agent's hubs do.
	Role string
	// SyncAddr is the address the sync listener binds ("host:port"; port
	// 0 picks a free one). "": the replica does not listen, it only dials
	// its partners.
	SyncAddr string
	// Hubs are the sync addresses of the hubs this replica syncs with.
	Hubs []string
	// ClusterID names the cluster; sessions between replicas of different
	// clusters are refused. "": DefaultClusterID, the agent's default, so
	// an embedded replica syncs with agents left at theirs.
	ClusterID string
	// Policies sets table policies (table → lww, client-wins, server-wins
	// or manual); they win over what a hub distributed.
	Policies map[string]string
	// PullInterval is how often every partner is synced in the
	// background (0: 60 s).
	PullInterval time.Duration
	// MaxSessions bounds the sync sessions served and dialed at once (0:
	// 64).
	MaxSessions int
	// MaxClockOffset bounds how far ahead of local time a remote stamp
	// may be (0: one minute; negative: no bound).
	MaxClockOffset time.Duration
	// TLS, if set, secures sync connections: the listener serves TLS with
	// it and dialing uses it as the client configuration (give it the
	// certificates, the CA pool and, for mutual TLS, ClientAuth). Its
	// certificate is a replicad node certificate (`replicad tls cert
	// create`: it binds the cluster, a node id range and the role), as
	// every peer's must be: a peer's claimed node id, role and cluster
	// are checked against its certificate, as the agent checks them, and
	// a store whose node id the certificate does not bind is refused.
	TLS *tls.Config
	// GossipAddr, if set, joins the gossip cluster (hashicorp/memberlist)
	// on this address ("host:port"); every alive member with a sync
	// address becomes a sync partner, and writes are pushed over gossip.
	GossipAddr string
	// Join lists gossip addresses of members to join.
	Join []string
	// GossipKey is the gossip encryption key (16, 24 or 32 bytes; nil:
	// plain). Without TLS, gossip pushes are applied as writes, so give a
	// key on any network others reach.
	GossipKey []byte
	// GossipKeys is a keyring, as the agent's --gossip-keyring: the first
	// key (after GossipKey, if set) encrypts, every key decrypts, so keys
	// rotate without a partition.
	GossipKeys [][]byte
	// Logger receives the replica's log (nil: discarded).
	Logger hclog.Logger
	// NoSync skips fsync on commit: faster, for tests; a crash of the
	// machine may lose the last writes.
	NoSync bool
	// WatchQueue bounds the events each Watch holds for its reader (0:
	// 1024); a watcher further behind gets an "overflow" event and its
	// channel is closed.
	WatchQueue int
	// Indexes and Views, on a hub, are the secondary indexes and the
	// views it declares to every replica; at Open it publishes these,
	// removing those it declared before (another hub's stay: views.go).
	Indexes []Index
	Views   []View
	// Device holds the attributes device.* reads in queries and views
	// when the hub assigned this replica none (views.go).
	Device map[string]string
}

// defaults and validation.
func (c *Config) check() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: Config.DataDir is empty", ErrInvalid)
	}
	switch c.Role {
	case "":
		c.Role = RoleDevice
	case RoleDevice, RoleHub:
	default:
		return fmt.Errorf("%w: Config.Role %q: want %q or %q", ErrInvalid, c.Role, RoleDevice, RoleHub)
	}
	for t, p := range c.Policies {
		if !store.ValidTable(t) {
			return fmt.Errorf("%w: Config.Policies: bad table name %q", ErrInvalid, t)
		}
		if _, err := policy.Parse(p); err != nil {
			return fmt.Errorf("%w: Config.Policies[%q]: %v", ErrInvalid, t, err)
		}
	}
	for _, h := range c.Hubs {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return fmt.Errorf("%w: Config.Hubs: %q: %v", ErrInvalid, h, err)
		}
	}
	if c.GossipAddr != "" {
		if _, _, err := net.SplitHostPort(c.GossipAddr); err != nil {
			return fmt.Errorf("%w: Config.GossipAddr %q: %v", ErrInvalid, c.GossipAddr, err)
		}
	}
	if err := c.checkDecls(); err != nil {
		return err
	}
	if c.ClusterID == "" {
		c.ClusterID = DefaultClusterID
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 64
	}
	if c.MaxClockOffset == 0 {
		c.MaxClockOffset = time.Minute
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// Replica is one open replica. Open it with Open; Close it.
type Replica struct {
	cfg    Config
	log    hclog.Logger
	st     *store.Store
	core   *replicacore.Core // clock, host, engine, gossip, listener (shared with the agent)
	n      *node.Node        // core.Node
	engine *replication.Engine
	ln     net.Listener
	live   *live.Engine

	ctx    context.Context // done on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watches' goroutines

	opt       *replicaopt.Options // the agent's additions; empty for an embedder
	startOnce sync.Once
	closeOnce sync.Once
	mu        sync.RWMutex // held shared by calls, exclusively by Close
	closed    bool
}

// Open opens (or creates) the replica in cfg.DataDir, binds its sync
// listener and starts syncing. ctx bounds the opening only. On error
// everything opened is closed again.
func Open(ctx context.Context, cfg Config) (_ *Replica, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := replicaopt.FromContext(ctx) // the agent's additions (internal/replicaopt)
	if o == nil {
		o = &replicaopt.Options{}
	}
	keyring, err := cfg.gossipKeys()
	if err != nil {
		return nil, err
	}
	var ident *secure.Identity // Config.TLS's (tls.go)
	if cfg.TLS != nil && o.TLS == nil {
		id, err := cfg.tlsIdentity()
		if err != nil {
			return nil, err
		}
		ident = &id
	}
	r := &Replica{cfg: cfg, log: cfg.Logger, opt: o}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			r.shutdown()
		}
	}()
	switch {
	case o.SyncListener != nil:
		r.ln = o.SyncListener
	case cfg.SyncAddr != "":
		// Before the store: a busy port leaves nothing on disk.
		if r.ln, err = net.Listen("tcp", cfg.SyncAddr); err != nil {
			return nil, fmt.Errorf("sync listener: %w", err)
		}
		if cfg.TLS != nil {
			r.ln = tls.NewListener(r.ln, cfg.TLS)
		}
	}
	so := store.Options{NoSync: cfg.NoSync}
	if o.Store != nil {
		so = *o.Store
	}
	so.Dir = cfg.DataDir
	if ident != nil && so.NodeID == 0 {
		so.NodeID = newNodeID(*ident)
	}
	if r.st, err = store.Open(so); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if ident != nil {
		if err := checkNode(r.st, *ident); err != nil {
			return nil, err
		}
	}
	p := &replicaopt.Parts{Store: r.st, SyncLn: r.ln, StartFunc: r.start, GoFunc: func(fn func(context.Context)) { r.core.Go(fn) }}
	o.Parts = p
	if o.Opened != nil {
		if err := o.Opened(r.st); err != nil {
			return nil, err
		}
	}
	r.core = replicacore.New(replicacore.Options{Store: r.st, ClockOffset: o.ClockOffset, MaxClockOffset: cfg.MaxClockOffset,
		Policies: cfg.Policies, Hub: cfg.Role == RoleHub, Log: r.log})
	r.core.SyncLn = r.ln
	r.n = r.core.Node
	p.Clock, p.Node = r.core.Clock, r.n
	r.live = live.New(r.st, live.Options{Queue: r.cfg.WatchQueue})

	ecfg := replication.Config{
		Local: replication.Local{
			Node:    r.st.NodeID(),
			Cluster: cfg.ClusterID,
			Role:    cfg.Role,
			Scope:   replication.FullScope(),
			Clock:   r.core.Clock,
			Store:   r.st,
			Log:     r.log,
			OnPeerHave: func(p replication.Peer, have map[hlc.NodeID]store.Held) {
				r.n.ObserveHubs(p, have)
			},
			Arbitrated: func(t string) bool { return r.n.PolicyOf(t).NeedsArbiter() },
		},
		Hubs:         cfg.Hubs,
		PullInterval: cfg.PullInterval,
		MaxSessions:  cfg.MaxSessions,
	}
	r.syncTLS(&ecfg) // tls.go
	if cfg.Role == RoleHub {
		ecfg.Collector = replication.NewCollector(r.st, 0, nil)
	}
	if o.Configure != nil {
		if err := o.Configure(p, &ecfg); err != nil {
			return nil, err
		}
	}
	if cfg.GossipAddr != "" {
		host, port, _ := net.SplitHostPort(cfg.GossipAddr)
		pt, _ := strconv.Atoi(port)
		meta := gossip.Meta{Role: gossip.Role(cfg.Role), ClusterID: cfg.ClusterID}
		if r.ln != nil {
			meta.SyncAddr = r.ln.Addr().String()
		}
		g := gossip.Config{Name: r.st.NodeID().String(), BindAddr: host, BindPort: pt, Meta: meta,
			Join: cfg.Join, Logger: r.log.Named("gossip"), Keyring: keyring}
		if o.Gossip != nil {
			o.Gossip(&g)
		}
		if err = r.core.JoinGossip(g, &ecfg); err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
		p.Gossip = r.core.Gossip
	}
	if o.Build != nil {
		if err := o.Build(p, &ecfg); err != nil {
			return nil, err
		}
	}
	if cfg.Role == RoleHub && ecfg.Local.Admit == nil {
		// A hub refuses what devices may not write to the system tables
		// (the agent's assembly wires the same, with its permissions).
		r.core.JudgeSystemTables(&ecfg)
	}
	// The live queries' engine, told last of what changes what they see:
	// local writes, remote applies, scope changes.
	r.n.OnWritten("live", func(*crdt.Write) { r.live.Notify() })
	r.n.OnRemoteApplied("live", func(hlc.NodeID, []*crdt.Write, *store.Result) { r.live.Notify() })
	if r.engine, err = r.core.NewEngine(ecfg); err != nil {
		return nil, err
	}
	p.Engine = r.engine
	if !o.Manual {
		if err := r.start(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// start publishes a hub's table policies (before any session: writes are
// judged by the policy in force when they were made) and its indexes and
// views, calls the seam's Start, then serves the sync listener and runs
// the engine.
func (r *Replica) start() (err error) {
	r.startOnce.Do(func() {
		if r.cfg.Role == RoleHub && len(r.cfg.Policies) > 0 {
			if err = r.n.PublishPolicies(r.cfg.Policies); err != nil {
				err = fmt.Errorf("publishing the table policies: %w", err)
			}
		}
		if err == nil {
			err = r.publishDecls() // a hub's indexes and views (views.go)
		}
		if r.opt.Start != nil {
			r.opt.Start(r.core.Context(), r.opt.Parts)
		}
		r.core.Start()
	})
	return err
}

// Close stops syncing (leaving the gossip cluster), ends every Watch,
// waits for every goroutine the replica started and closes the store.
// It is safe to call more than once; later calls return nil.
func (r *Replica) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.cancel() // a Sync in progress gives up (it holds mu shared)
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		err = r.shutdown()
	})
	return err
}

func (r *Replica) shutdown() error {
	r.cancel()
	if r.core != nil {
		r.core.Stop() // listener, engine, gossip, their goroutines
	} else if r.ln != nil {
		r.ln.Close()
	}
	if r.live != nil {
		r.live.Close()
	}
	r.wg.Wait()
	if r.opt.Stop != nil && r.opt.Parts != nil {
		r.opt.Stop(r.opt.Parts)
	}
	if r.st != nil {
		if err := r.st.Close(); err != nil {
			return fmt.Errorf("closing the store: %w", err)
		}
	}
	return nil
}

// use holds the replica open for one call; done releases it.
func (r *Replica) use(ctx context.Context) (done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return nil, ErrClosed
	}
	return r.mu.RUnlock, nil
}

// NodeID returns the replica's node id (chosen when its store was
// created, kept across restarts).
func (r *Replica) NodeID() string { return r.st.NodeID().String() }

// Role returns "device" or "hub".
func (r *Replica) Role() string { return r.cfg.Role }

// SyncAddr returns the address the sync listener is bound to (the port
// chosen when Config.SyncAddr's was 0), "" when it does not listen.
func (r *Replica) SyncAddr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// GossipAddr returns the gossip address ("" without gossip).
func (r *Replica) GossipAddr() string {
	if r.core.Gossip == nil {
		return ""
	}
	return r.core.Gossip.Addr()
}

// checkNames refuses a bad table name or record id. The system tables
// (names starting "_replicad_") are the replica's own: writing them is
// refused.
func checkNames(table, id string, write bool) error {
	if !store.ValidTable(table) {
		return fmt.Errorf("%w: table name %q: 1-%d characters from [A-Za-z0-9_.-]", ErrInvalid, table, store.MaxTableLen)
	}
	if write && strings.HasPrefix(table, "_replicad_") {
		return fmt.Errorf("%w: table %q is a system table", ErrInvalid, table)
	}
	if !store.ValidID(id) {
		return fmt.Errorf("%w: record id %q: 1-%d bytes of UTF-8 without NUL", ErrInvalid, id, store.MaxIDLen)
	}
	return nil
}
