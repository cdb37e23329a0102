package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/drafts"
	"github.com/replicad/replicad/internal/ext/metrics"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/ext/profiles"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/replicacore"
	"github.com/replicad/replicad/internal/syncround"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
	"golang.org/x/sys/unix"
)

// ErrLocked is returned by New when another agent holds the data directory.
var ErrLocked = errors.New("data directory in use")

// NewLogger returns the agent's logger: text (colored on a terminal) or
// JSON lines with cfg.LogJSON, on w, at cfg.LogLevel.
func NewLogger(cfg Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "replicad",
		Level:      cfg.HclogLevel(),
		Output:     w,
		JSONFormat: cfg.LogJSON,
		Color:      hclog.AutoColor,
	})
}

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

	// mu guards rep: handlers hold it shared, a reset exclusively.
	mu  sync.RWMutex
	rep *replica
	// recovering: rep is nil because the store failed and is being
	// reopened (recover.go).
	recovering bool

	prog syncProgress

	sec *security // API token, TLS, gossip keyring (security.go)

	drafts *drafts.API     // the drafts' endpoints (internal/ext/drafts)
	online *onlineread.API // online reads (internal/ext/onlineread)

	routeOf func(*http.Request) string // the route pattern a request matches (set by routes)

	atRestKey []byte // the store's encryption key, nil: plain (atrest.go)

	guard *httpapi.Guard // the API's HTTP hardening (internal/httpapi/guard.go)

	// Writes refused for the parked-write bound (parked.go).
	parkLog  netguard.Throttle
	parkMu   sync.Mutex
	parkFull map[hlc.NodeID]bool // origins whose refusal is in the sync errors
}

// replica is what a reset replaces: the store and everything built on it.
// Its core (clock, host, engine, gossip, sync listener and their
// lifecycle) is internal/replicacore, the one package replica embeds;
// the fields below alias the core's, the rest is the agent's own.
type replica struct {
	a      *Agent
	core   *replicacore.Core
	n      *node.Node // the host: the write pipeline and its hooks
	node   hlc.NodeID
	store  *store.Store
	clock  *hlc.Clock
	engine *replication.Engine
	gossip *gossip.Gossip
	syncLn net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    *node.Outbound   // own writes no hub is known to hold
	arb    *arbiter.Arbiter // on the arbitrating hub

	book *peers.Book // every node that synced with this one (internal/ext/peers)

	// The work that only runs online (dedupe.go, workflows.go).
	dupes *dedupe.Detector
	flows *workflows.Set

	profiles *profiles.State // a hub's offline profiles (internal/ext/profiles)

	enf *authz.Enforcer // a hub's write permissions (internal/ext/authz)

	syncer *syncround.Syncer // the syncs asked for (internal/syncround)
	// sys is a hub's judge of what peers send to the system tables (systables.go).
	sys *authz.SysJudge
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
	a := &Agent{cfg: cfg, log: log, feed: node.NewFeed(), started: time.Now(), parkFull: map[hlc.NodeID]bool{}}
	// The listeners first: a busy port must leave nothing behind on disk
	// (no data directory, lock file or store).
	apiLn, syncLn, err := bindListeners(cfg)
	if err != nil {
		return nil, err
	}
	a.apiLn, a.syncLn = apiLn, syncLn
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	a.lock, err = lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	bi := buildVersion()
	a.guard = httpapi.NewGuard(cfg.Security.Guard, cfg.MaxBodyBytes, log, a.apiError)
	a.metrics = metrics.New(metricsHost{a}, metrics.Build{Version: bi.Version, Revision: bi.Revision, GoVersion: bi.GoVersion})
	a.drafts = drafts.New(apiHost{a})
	a.online = onlineread.New(onlineHost{apiHost{a}})
	limitCmem() // before the store allocates (cmem.go)
	if a.sec, err = newSecurity(cfg, log); err != nil {
		return nil, err
	}
	if a.atRestKey, err = loadKey(&cfg.AtRest); err != nil {
		return nil, err
	}
	a.rep, err = a.openReplica()
	if err != nil {
		return nil, err
	}
	a.apiLn = a.sec.APIListener(a.guardListener(a.apiLn, "api", cfg.Security.Guard.APIMaxConns))
	a.http = a.guard.Server(a.metrics.Instrument(a.route, a.sec.apiHandler(a, a.routes())), a.apiLn.Addr().String()) // the guards: internal/httpapi/guard.go
	return a, nil
}

// APIAddr returns the address the API listens on.
func (a *Agent) APIAddr() string { return a.apiLn.Addr().String() }

// Run serves until ctx is done, then shuts down cleanly: the API, the
// engine, gossip (leaving the cluster), and the store.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.rep.start()
	a.mu.Unlock()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); a.watchStore(wctx) }() // reopen a store failed by an I/O error (recover.go)
	trimmed := startCmem(wctx)                               // C malloc's free memory back to the OS (cmem.go)
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(a.apiLn) }()
	a.mu.RLock()
	r := a.rep
	a.mu.RUnlock()
	a.log.Info("agent running", "node", r.node, "role", a.cfg.Role, "api", a.APIAddr(), "sync", r.syncLn.Addr().String(),
		"gossip", r.gossipAddr(), "hubs", strings.Join(a.cfg.Hubs, ","), "data_dir", a.cfg.DataDir)
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
	a.mu.Lock()
	if a.rep != nil {
		a.rep.close()
		a.rep = nil
	}
	a.mu.Unlock()
	if a.lock != nil {
		unix.Flock(int(a.lock.Fd()), unix.LOCK_UN)
		a.lock.Close()
		a.lock = nil
	}
}

// lockDir creates dir if needed and takes an exclusive flock on its lock
// file, writing our pid into it.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, "replicad.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			who := "another replicad agent"
			if p := strings.TrimSpace(string(pid)); p != "" {
				who += " (pid " + p + ")"
			}
			return nil, fmt.Errorf("%w: %s is used by %s; stop it or give another --data-dir", ErrLocked, dir, who)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func (a *Agent) storeDir() string { return filepath.Join(a.cfg.DataDir, "store") }

// openReplica opens the store and builds clock, engine, gossip and the
// sync listener on it.
func (a *Agent) openReplica() (r *replica, err error) {
	cfg := a.cfg
	st, err := store.Open(a.storeOptions()) // compact.go
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := a.sec.CheckNode(st.NodeID()); err != nil {
		st.Close()
		return nil, err
	}
	if n, err := migrateQueue(st); err != nil { // queues.go
		st.Close()
		return nil, err
	} else if n > 0 {
		a.log.Info("work queue moved to the named queues", "entries", n)
	}
	rep := &replica{a: a, node: st.NodeID(), store: st}
	rep.sys = authz.NewSysJudge(sysTables, rep.node, rep.knownHub, a.metrics.SysRefused, a.log.Named("systables"))
	r = rep
	defer func() {
		if err != nil {
			rep.close()
		}
	}()
	r.core = replicacore.New(replicacore.Options{Store: st, ClockOffset: cfg.ClockOffset, MaxClockOffset: cfg.MaxClockOffset,
		Policies: cfg.Policies, Hub: cfg.Role == "hub", Log: a.log})
	r.clock, r.n = r.core.Clock, r.core.Node
	r.out = node.NewOutbound(st.HeldOf(r.node).Max())
	r.syncer = syncround.New(r.n, r.out, cfg.Role == "hub", a.log)
	if r.book, err = peers.New(st, a.log, nil); err != nil {
		return nil, fmt.Errorf("reading the peer table: %w", err)
	}

	if r.syncLn, err = a.takeSyncListener(); err != nil {
		return nil, err
	}
	syncMax := cfg.Security.Guard.SyncMaxConns
	if syncMax == 0 {
		syncMax = max(httpapi.ConnBound(0), cfg.Sessions()+16) // room for every session slot
	}
	r.syncLn = a.sec.SyncListener(a.guardListener(r.syncLn, "sync", syncMax))
	r.core.SyncLn = r.syncLn // closed by the core's Stop
	// Watch connections share the sync listener's connection bound: by
	// default they leave room for every session slot.
	watchers := cfg.Watchers()
	if room := max(0, httpapi.ConnBound(syncMax)-cfg.Sessions()-16); cfg.MaxWatchers == 0 {
		watchers = min(watchers, room)
	} else if watchers > room {
		a.log.Warn("--max-watchers leaves too few of the sync listener's connections for sessions", "max_watchers", watchers, "sync_max_conns", httpapi.ConnBound(syncMax), "max_sessions", cfg.Sessions())
	}
	ecfg := replication.Config{
		Local: replication.Local{
			Node:    r.node,
			Cluster: cfg.ClusterID,
			Role:    cfg.Role,
			Scope:   replication.FullScope(),
			Clock:   r.clock,
			Store:   st,
			Log:     a.log,
			OnPeerHave: func(p replication.Peer, have map[hlc.NodeID]store.Held) {
				rep.n.ObserveHubs(p, have)
				rep.book.Started(p, have)
			},
			Version:   buildVersion().String(),
			Advertise: rep.advertise,
		},
		OnSession:    r.onSession,
		Hubs:         cfg.Hubs,
		PullInterval: cfg.PullInterval,
		MaxSessions:  cfg.Sessions(),
		Watch:        true, // a watch connection with each of Hubs (replication/watch.go)
		MaxWatchers:  watchers,
	}
	a.sec.engine(&ecfg, r)
	if err := r.setupProfiles(&ecfg); err != nil {
		return nil, err
	}
	if bind := cfg.GossipBind(); bind != "" {
		host, port, _ := net.SplitHostPort(bind)
		p, _ := strconv.Atoi(port)
		err = r.core.JoinGossip(gossip.Config{
			Name:     r.node.String(),
			BindAddr: host,
			BindPort: p,
			Meta:     gossip.Meta{Role: gossip.Role(cfg.Role), SyncAddr: r.syncLn.Addr().String(), ClusterID: cfg.ClusterID, APIAddr: a.advertisedAPI()},
			Join:     cfg.Join,
			Logger:   a.log.Named("gossip"),
			Profile:  cfg.GossipProfile,
			Keyring:  a.sec.Keyring(),
		}, &ecfg) // pushes to the engine, members as partners
		if err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
		r.gossip = r.core.Gossip
		ecfg.Broadcast = r.reads().SafeBroadcast(r.gossip.Broadcast)
	}
	if cfg.Role == "hub" {
		// A hub decides when deleted records are collected everywhere
		// (see replication.Collector); devices follow its horizon.
		ecfg.Collector = replication.NewCollector(r.store, 0, nil)
		if !cfg.NoArbiter {
			r.arb = arbiter.New(r.host("arbiter"))
			ecfg.Local.Decided = r.arb.DecidedUpTo // told to devices in the handshake (syncround.go)
		}
	}
	if r.arb != nil {
		keys := map[string][]string{}
		for t, tc := range cfg.Tables {
			keys[t] = tc.Keys
		}
		r.dupes = dedupe.New(r.host("dedupe"), keys) // nil: no table has key fields
	}
	ecfg.Local.Arbitrated = func(t string) bool { return rep.n.PolicyOf(t).NeedsArbiter() } // states of these tables: from the arbiter only
	r.registerHooks()
	ecfg.Local.ApplyHook = r.n.ApplyHook()
	ecfg.Local.OnApplied = r.n.RemoteApplied()
	if r.engine, err = r.core.NewEngine(ecfg); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs the sync listener, the engine's triggers and the outbound
// tracker.
func (r *replica) start() {
	if r.a.cfg.Role == "hub" && len(r.a.cfg.Policies) > 0 {
		// Before any session: writes are judged by the policy in force
		// when they were made.
		if err := r.n.PublishPolicies(r.a.cfg.Policies); err != nil {
			r.a.log.Error("publishing the table policies", "error", err)
		}
	}
	if r.a.cfg.Role == "hub" {
		if err := r.reads().Mark(); err != nil {
			r.a.log.Error("publishing whether read permissions are in force", "error", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.startSecurity(ctx) // permission write-backs left queued, grants (security.go)
	r.startOnline(ctx)   // duplicate detection and workflows (online.go)
	if r.profiles != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.profiles.Watch(ctx.Done(), r.a.log) }()
	}
	r.core.Start() // the sync listener served, the engine's triggers
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.flushPeers(ctx.Done()) // the peer table, to the store (peers.go)
	}()
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.out.Observe(r.engine.Partners())
			}
		}
	}()
	if r.arb != nil {
		// Carry out the policy decisions queued by applied batches (and
		// any left by a crash), as they come.
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.arb.Run(ctx) }()
	}
}

// close stops everything of the replica and closes its store.
func (r *replica) close() {
	if r.cancel != nil {
		r.cancel()
	}
	if r.core != nil {
		r.core.Stop() // sync listener, engine, gossip, their goroutines
	} else if r.syncLn != nil {
		r.syncLn.Close()
	}
	r.wg.Wait()
	if r.book != nil {
		if err := r.book.Flush(); err != nil {
			r.a.log.Warn("writing the peer table", "error", err)
		}
	}
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.a.log.Error("closing the store", "error", err)
		}
	}
}

func (r *replica) gossipAddr() string { return r.core.GossipAddr() }

// onApplied is told of remote writes applied here (sessions and gossip
// pushes).
func (r *replica) onApplied(peer hlc.NodeID, writes []*crdt.Write, res *store.Result) {
	r.a.metrics.RemoteApplied(res.Applied, len(res.Parked))
	r.parkRefused(writes, res) // parked.go
	r.a.feed.Notify()
}

// localWrite makes a local write, then wakes feed waiters and the engine.
func (r *replica) localWrite(table, id string, fields []crdt.FieldValue, del bool) (*store.WriteResult, error) {
	return r.localWriteWith(table, id, fields, del, nil)
}

// localWriteWith is localWrite whose batch also carries what also adds
// (committed atomically with the write; publishing a draft removes it).
func (r *replica) localWriteWith(table, id string, fields []crdt.FieldValue, del bool, also func(b *store.Batch)) (*store.WriteResult, error) {
	var add node.LocalHook
	if also != nil {
		add = func(b *store.Batch, _ *store.WriteResult) error { also(b); return b.Err() }
	}
	return r.n.Write(table, id, fields, del, add)
}
