package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/buildinfo"
	"github.com/replicad/replicad/internal/cmem"
	"github.com/replicad/replicad/internal/credentials"
	"github.com/replicad/replicad/internal/datadir"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/drafts"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/ext/metrics"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/replicaopt"
	"github.com/replicad/replicad/internal/replicaslot"
	"github.com/replicad/replicad/internal/syncround"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// ErrLocked is returned by New when another agent holds the data directory.
var ErrLocked = datadir.ErrLocked

// NewLogger returns the agent's logger (config.Config.NewLogger).
func NewLogger(cfg Config, w io.Writer) hclog.Logger { return cfg.NewLogger(w) }

// Agent is a running replicad node. Create it with New, run it with Run.
type Agent struct {
	cfg     Config
	log     hclog.Logger
	lock    *os.File
	metrics *metrics.Metrics
	feed    *node.Feed
	apiLn   net.Listener
	syncLn  net.Listener // bound by New before the store exists; the first replica takes it
	http    *http.Server
	started time.Time

	// cur is the current replica: handlers hold it shared, a reset
	// exclusively; a failed store is reopened (internal/replicaslot).
	cur replicaslot.Slot[*running]

	prog syncround.Progress // the syncs asked for in progress

	sec *security // API token, TLS, gossip keyring (security.go)

	drafts *drafts.API     // the drafts' endpoints (internal/ext/drafts)
	online *onlineread.API // online reads (internal/ext/onlineread)

	queries *httpapi.Queries // queries and live queries (httpapi.CoreRoutes)

	routeOf func(*http.Request) string // the route pattern a request matches (set by routes)

	atRestKey []byte // the store's encryption key, nil: plain (credentials.LoadKey)

	guard *httpapi.Guard // the API's HTTP hardening (internal/httpapi/guard.go)

	parked *node.ParkRefusals // writes refused for the parked-write bound
}

// running is what a reset replaces: one *replica.Replica (package
// replica: store, clock, host, engine, gossip, sync listener and their
// lifecycle) and the agent's extensions built on it through the seam
// (internal/replicaopt). The fields below n alias the replica's parts.
type running struct {
	a      *Agent
	pub    *replica.Replica
	parts  *replicaopt.Parts
	n      *node.Node // the host: the write pipeline and its hooks
	node   hlc.NodeID
	store  *store.Store
	clock  *hlc.Clock
	engine *replication.Engine
	gossip *gossip.Gossip
	syncLn net.Listener
	wg     sync.WaitGroup // the extensions' goroutines
	out    *node.Outbound // own writes no hub is known to hold

	exts []extapi.Extension // the extensions, in their fixed order (extensions.go)

	syncer *syncround.Syncer // the syncs asked for (internal/syncround)
	// sys is a hub's judge of what peers send to the system tables (systables.go).
	sys *node.SysJudge
}

// New locks the data directory, opens the store, and binds the API and
// sync listeners. Nothing runs until Run. On error everything opened is
// closed again.
func New(cfg Config, log hclog.Logger) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a := &Agent{cfg: cfg, log: log, feed: node.NewFeed(), started: time.Now()}
	// The listeners first: a busy port must leave nothing behind on disk
	// (no data directory, lock file or store).
	apiLn, syncLn, err := datadir.BindListeners(cfg.DataDir, datadir.Addrs{API: cfg.APIAddr, Sync: cfg.SyncAddr, Gossip: cfg.GossipBind()})
	if err != nil {
		return nil, err
	}
	a.apiLn, a.syncLn = apiLn, syncLn
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	a.lock, err = datadir.Lock(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	bi := buildinfo.Get()
	a.guard = httpapi.NewGuard(cfg.Security.Guard, cfg.MaxBodyBytes, log, a.apiError)
	a.metrics = metrics.New(slot{a}, metrics.Build{Version: bi.Version, Revision: bi.Revision, GoVersion: bi.GoVersion})
	a.parked = &node.ParkRefusals{Max: cfg.Security.Guard.WithDefaults().MaxParked, Log: log, Counted: a.metrics.ParkRefused}
	a.drafts = drafts.New(hostOf(a, (*running).records))
	cmem.LimitArenas(cmem.Arenas) // before the store allocates (internal/cmem)
	if a.sec, err = authz.NewSecurity(cfg, log); err != nil {
		return nil, err
	}
	a.online = a.onlineReads() // onlinereads.go
	if a.atRestKey, err = credentials.LoadKey(&cfg.AtRest); err != nil {
		return nil, err
	}
	rp, err := a.openReplica()
	if err != nil {
		return nil, err
	}
	a.cur.Set(rp, false)
	a.cur.Open, a.cur.Log = a.startReplica, log
	a.cur.Opened = func(rp *running) { log.Info("store reopened", "node", rp.node); a.feed.Notify() }
	a.apiLn = a.sec.APIListener(a.guardListener(a.apiLn, "api", cfg.Security.Guard.APIMaxConns))
	h := apiHandler(a.sec, a, a.routes())                                                // routes sets routeOf
	a.http = a.guard.Server(a.metrics.Instrument(a.routeOf, h), a.apiLn.Addr().String()) // the guards: internal/httpapi/guard.go
	return a, nil
}

// APIAddr returns the address the API listens on.
func (a *Agent) APIAddr() string { return a.apiLn.Addr().String() }

// Run serves until ctx is done, then shuts down cleanly: the API, the
// engine, gossip (leaving the cluster), and the store.
func (a *Agent) Run(ctx context.Context) error {
	a.cur.Lock()
	a.cur.Get().start()
	a.cur.Unlock()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); a.cur.Watch(wctx, storeRecoverEvery) }() // reopen a store failed by an I/O error
	trimmed := cmem.Start(wctx, cmem.TrimEvery)                                // C malloc's free memory back to the OS
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(a.apiLn) }()
	a.cur.RLock()
	r := a.cur.Get()
	a.cur.RUnlock()
	a.log.Info("agent running", "node", r.node, "role", a.cfg.Role, "api", a.APIAddr(), "sync", r.syncLn.Addr().String(),
		"gossip", r.figures().GossipAddr(), "hubs", strings.Join(a.cfg.Hubs, ","), "data_dir", a.cfg.DataDir)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("api server: %w", err)
	}
	a.log.Info("shutting down")
	stopWatch()
	<-watched
	<-trimmed
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.feed.Close()
	a.queries.Close() // live queries end: Shutdown does not wait for them
	if serr := a.http.Shutdown(sctx); serr != nil {
		a.http.Close()
	}
	a.closeAll()
	a.log.Info("stopped")
	return err
}

func (a *Agent) closeAll() {
	if a.apiLn != nil {
		a.apiLn.Close()
	}
	if a.syncLn != nil {
		a.syncLn.Close() // bound by New, never handed to a replica
		a.syncLn = nil
	}
	a.cur.Close()
	if a.lock != nil {
		datadir.Unlock(a.lock)
		a.lock = nil
	}
}

func (a *Agent) storeDir() string { return filepath.Join(a.cfg.DataDir, "store") }

// takeSyncListener returns the sync listener New bound (the first
// replica's), or binds the sync address again (a replica opened by a
// reset or a store recovery, after the previous one closed its own).
func (a *Agent) takeSyncListener() (net.Listener, error) {
	if l := a.syncLn; l != nil {
		a.syncLn = nil
		return l, nil
	}
	return datadir.Listen(a.cfg.DataDir, "sync", "--sync-addr", a.cfg.SyncAddr)
}

// openReplica opens the store as a *replica.Replica, with what only the
// agent gives it through the seam (internal/replicaopt): the store's
// options, the sync listener bound by New and wrapped, the TLS identity,
// the node check and queue migration, the engine's additions and the
// extensions with their hooks. It is started by start.
func (a *Agent) openReplica() (*running, error) {
	cfg := a.cfg
	r := &running{a: a}
	ln, err := a.takeSyncListener()
	if err != nil {
		return nil, err
	}
	syncMax := cfg.Security.Guard.SyncMaxConns
	if syncMax == 0 {
		syncMax = max(httpapi.ConnBound(0), cfg.Sessions()+16) // room for every session slot
	}
	so := a.storeOptions() // compact.go
	o := &replicaopt.Options{
		Store:        &so,
		SyncListener: a.sec.SyncListener(a.guardListener(ln, "sync", syncMax)),
		TLS:          a.sec.TLS,
		ClockOffset:  cfg.ClockOffset,
		Opened:       a.sec.Opened(arbiter.Queue, a.log),
		Configure:    func(p *replicaopt.Parts, ecfg *replication.Config) error { return r.configure(p, ecfg, syncMax) },
		Gossip: func(g *gossip.Config) {
			g.Meta.APIAddr = a.advertisedAPI()
			g.Profile = cfg.GossipProfile
			g.Keyring = a.sec.Keyring()
		},
		Build:  r.build,
		Manual: true, // started by Run (or by a reset)
		Start:  r.started,
		Stop:   r.stopped,
	}
	maxOffset := cfg.MaxClockOffset
	if maxOffset <= 0 {
		maxOffset = -1 // no bound
	}
	ixs, views := declared(cfg) // decls.go
	r.pub, err = replica.Open(replicaopt.NewContext(context.Background(), o), replica.Config{
		DataDir: a.storeDir(), Role: cfg.Role, Hubs: cfg.Hubs, ClusterID: cfg.ClusterID, Policies: cfg.Policies,
		PullInterval: cfg.PullInterval, MaxSessions: cfg.Sessions(), MaxClockOffset: maxOffset,
		GossipAddr: cfg.GossipBind(), Join: cfg.Join, Logger: a.log, Indexes: ixs, Views: views,
	})
	if err != nil {
		return nil, err
	}
	r.engine = r.parts.Engine
	return r, nil
}

// configure builds the extensions and sets what the engine needs of the
// replica and of them, before gossip is joined.
func (r *running) configure(p *replicaopt.Parts, ecfg *replication.Config, syncMax int) error {
	a, cfg := r.a, r.a.cfg
	r.parts, r.n, r.node, r.store, r.clock, r.syncLn = p, p.Node, p.Store.NodeID(), p.Store, p.Clock, p.SyncLn
	r.sys = node.NewSysJudge(sysTables, r.node, r.knownHub, a.metrics.SysRefused, a.log.Named("systables"))
	r.out = node.NewOutbound(r.store.HeldOf(r.node).Max())
	r.syncer = syncround.New(r.n, r.out, cfg.Role == "hub", a.log)
	// Watch connections share the sync listener's connection bound.
	watchers, over := cfg.WatchersWithin(httpapi.ConnBound(syncMax))
	if over {
		a.log.Warn("--max-watchers leaves too few of the sync listener's connections for sessions", "max_watchers", watchers, "sync_max_conns", httpapi.ConnBound(syncMax), "max_sessions", cfg.Sessions())
	}
	ecfg.Local.Version = buildinfo.Get().String()
	ecfg.Local.Advertise = r.advertise
	ecfg.OnSession = a.metrics.Session // after the peer table's (internal/ext/peers)
	ecfg.Watch = true                  // a watch connection with each of Hubs (replication/watch.go)
	ecfg.MaxWatchers = watchers
	r.exts = r.extensions()
	for _, e := range r.exts {
		if c, ok := e.(extapi.Configurer); ok {
			if err := c.Configure(extapi.Parts{Node: r.n}, ecfg); err != nil {
				return err
			}
		}
	}
	return nil
}

// build registers, once gossip is joined, the extensions' hooks in the
// list's order, then the replica's own: the mirrored sync errors (where
// no arbiter decides), its bookkeeping of applied batches, and the
// observers of local writes (the pending count, the metrics, the change
// feed). replica.Open registers the live queries after these.
func (r *running) build(p *replicaopt.Parts, ecfg *replication.Config) error {
	r.gossip = p.Gossip
	for _, e := range r.exts {
		if b, ok := e.(extapi.Builder); ok {
			if err := b.Build(extapi.Parts{Node: r.n, Gossip: r.gossip}, ecfg); err != nil {
				return err
			}
		}
	}
	if r.a.cfg.Role != "hub" {
		ecfg.Local.OnAssigned = r.n.Assigned() // stripped tables, then the kept scope
	}
	if extOf[*arbiter.Arbiter](r) == nil {
		r.n.OnApply("syncerrors", r.n.MirrorSyncErrors)
	}
	r.n.OnRemoteApplied("replica", r.onApplied) // metrics, parked-write refusals, the feed
	r.n.OnWritten("outbound", func(w *crdt.Write) { r.out.Wrote(w.Seq) })
	r.n.OnWritten("metrics", func(*crdt.Write) { r.a.metrics.LocalWrite() })
	r.n.OnWritten("feed", func(*crdt.Write) { r.a.feed.Notify() })
	return nil
}

// storeRecoverEvery is how often a failed store is retried.
const storeRecoverEvery = 2 * time.Second

// startReplica opens and starts a replica (a store recovery's, a reset's).
func (a *Agent) startReplica() (*running, error) {
	rp, err := a.openReplica()
	if err == nil {
		rp.start()
	}
	return rp, err
}

// start starts the replica: its table policies, then started, then the
// sync listener and the engine.
func (r *running) start() {
	if err := r.parts.Start(); err != nil {
		r.a.log.Error("starting the replica", "error", err)
	}
}

// started starts, before any session, the extensions in the list's
// order and the replica's bookkeeping of what hubs hold; their
// goroutines run until ctx is done (the replica closing).
func (r *running) started(ctx context.Context, p *replicaopt.Parts) {
	for _, e := range r.exts {
		if s, ok := e.(extapi.Starter); ok {
			s.Start(ctx, &r.wg)
		}
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.out.ObserveEvery(ctx, 500*time.Millisecond, r.engine.Partners) }()
}

// stopped waits for the goroutines, then stops the extensions (the peer
// table written), before the store closes.
func (r *running) stopped(*replicaopt.Parts) {
	r.wg.Wait()
	for _, e := range r.exts {
		if s, ok := e.(extapi.Stopper); ok {
			s.Stop()
		}
	}
}

// Failed returns the store's failure (replicaslot.Replica).
func (r *running) Failed() error { return r.store.Failed() }

// Close closes the replica: everything stops and the store closes.
func (r *running) Close() {
	if err := r.pub.Close(); err != nil {
		r.a.log.Error("closing the store", "error", err)
	}
}

// onApplied is told of remote writes applied here (sessions and gossip
// pushes).
func (r *running) onApplied(peer hlc.NodeID, writes []*crdt.Write, res *store.Result) {
	r.a.metrics.RemoteApplied(res.Applied, len(res.Parked))
	r.a.parked.Observe(r.store, writes, res)
	r.a.feed.Notify()
}

// localWrite makes a local write through the node's pipeline.
func (r *running) localWrite(table, id string, fields []crdt.FieldValue, del bool) (*store.WriteResult, error) {
	return r.n.Write(table, id, fields, del, nil)
}

// guardListener bounds a listener's connections and keeps its accept loop
// alive through temporary errors (internal/netguard).
func (a *Agent) guardListener(l net.Listener, name string, max int) net.Listener {
	return netguard.Wrap(l, name, httpapi.ConnBound(max), a.log.Named(name))
}
