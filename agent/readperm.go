package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Read permissions: the read lists of the permission rules (internal/ext/authz)
// decide what a node may read. They are enforced where data leaves a
// node, the same way for sync (offline) and the hub's API (online):
//
//   - A hub narrows the scope it assigns a device (its offline profile,
//     or every record) to the device's read limit (replication.Scope
//     .Restrict), and every session narrows the scope it serves a device
//     peer to that limit whichever side dialed (replication.Local.Limit):
//     tables outside are never sent (their writes go as empties), fields
//     outside are stripped from writes and whole records.
//   - A device serving another device applies the other device's rules
//     too (readRulesFor: the hub-signed grants once known; until then a
//     device peer of a cluster with read rules is served only the system
//     tables).
//   - The hub's API answers a device identified by its client
//     certificate (or, without TLS, by the node id it claims) only with
//     the records and fields its rules allow: the same limit narrows each
//     record before its view is built (readGuard, readView).
//
// A device's own sync errors (_replicad_errors) name values of other
// devices' writes: a restricted device is served only the error records
// that name it (a filter on the "nodes" field publishSyncError adds).

// ---- whose rules ----

// readRulesFor returns the rules that judge what node may read, and
// whether they are known: on a hub its configuration; on a device the
// rules of the hub-signed grants naming node (grants.go; TLS clusters
// only), unknown without one.
func (r *replica) readRulesFor(node hlc.NodeID) (*authz.Rules, bool) {
	if r.a.cfg.Role == "hub" {
		return r.a.sec.rules(), true
	}
	return r.a.grantRules(node, time.Now())
}

// rules returns the compiled permission rules (nil: none).
func (s *security) rules() *authz.Rules {
	if s == nil {
		return nil
	}
	return s.perms
}

// peerLimit is replication.Local.Limit: a device peer's read limit. On a
// device that does not know the peer's rules, a cluster with read rules
// (guardedCluster: with TLS any grant at all) serves the peer only the
// system tables (its own sync errors among them); a cluster without them
// works as before.
func (r *replica) peerLimit(p replication.Peer) (replication.Scope, bool) {
	if p.Role != "device" {
		return replication.Scope{}, false
	}
	rules, known := r.readRulesFor(p.Node)
	if known {
		return rules.ReadLimit(p.Node)
	}
	if r.guardedCluster() {
		return authz.LimitScope(p.Node, nil), true
	}
	return replication.Scope{}, false
}

// The hubs of a cluster with read rules say so in a system record, so
// that a device knows to hold back from peers whose rules it does not
// know.
const (
	securityTable = "_replicad_security"
	readsMarker   = "reads"
)

// guardedCluster reports whether a device peer whose rules are unknown
// must be held back: the cluster's hubs have read rules, or (with TLS)
// this node holds any verified grant, which no device can forge (the
// marker could be written by a device that matches no write rule).
func (r *replica) guardedCluster() bool {
	if s := r.a.sec; r.a.cfg.Role != "hub" && s != nil && s.grants != nil && s.grants.HasGrants(time.Now()) {
		return true
	}
	return r.clusterReadRules()
}

// clusterReadRules reports whether the cluster's hubs have read rules (by
// this node's own rules on a hub, by the hubs' marker on a device).
func (r *replica) clusterReadRules() bool {
	if r.a.cfg.Role == "hub" {
		return r.a.sec.rules().HasReadRules()
	}
	rec := r.n.SysRecord(securityTable, readsMarker) // every local write asks (gossip pushes)
	if rec == nil || !rec.Exists() {
		return false
	}
	v, ok := rec.Get("restricted")
	return ok && len(v) == 1 && v[0] == 0xc3 // true
}

// markReads keeps the hub's marker equal to its rules.
func (r *replica) markReads() error {
	has := r.a.sec.rules().HasReadRules()
	want := crdt.MustValue(has)
	if rec, err := r.store.Get(securityTable, readsMarker); err == nil {
		if v, ok := rec.Get("restricted"); ok && string(v) == string(want) {
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	} else if !has {
		return nil
	}
	_, err := r.localWrite(securityTable, readsMarker, []crdt.FieldValue{{Name: "restricted", Value: want}}, false)
	return err
}

// readAssign is what a hub with read rules assigns a device: its profile
// (profile, nil: none) narrowed to its read limit.
func (r *replica) readAssign(perms *authz.Rules, profile func(replication.Peer) (replication.Scope, bool)) func(replication.Peer) (replication.Scope, bool) {
	return func(p replication.Peer) (replication.Scope, bool) {
		var sc replication.Scope
		ok := false
		if profile != nil {
			sc, ok = profile(p)
		}
		if p.Role != "device" {
			return sc, ok
		}
		lim, restricted := perms.ReadLimit(p.Node)
		if !ok {
			// No profile: every record, as far as the rules allow (a
			// device whose rules were lifted holds everything again).
			sc = replication.FullScope()
		}
		if restricted {
			r.warnLeftOut(p.Node, sc, lim)
			sc = sc.Restrict(lim)
		}
		return sc, true
	}
}

// setupStripped loads a device's tables held projected at some time
// (Local.Stripped) and returns what keeps them as scopes are assigned.
func (r *replica) setupStripped(ecfg *replication.Config) (func(replication.Scope), error) {
	st, err := loadStripped(filepath.Join(r.a.cfg.DataDir, strippedFile))
	if err != nil {
		return nil, err
	}
	st.add(ecfg.Local.Scope)
	ecfg.Local.Stripped = st.has
	return func(sc replication.Scope) {
		if err := st.add(sc); err != nil {
			r.a.log.Error("keeping the tables held projected", "error", err)
		}
	}, nil
}

// strippedFile keeps, on a device, the tables it held projected to some
// fields at some time: its change log may hold other origins' writes to
// them without some fields, which it must never relay as whole.
const strippedFile = "stripped.json"

type strippedSet struct {
	path   string
	mu     sync.Mutex
	tables map[string]bool
}

func loadStripped(path string) (*strippedSet, error) {
	s := &strippedSet{path: path, tables: map[string]bool{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, t := range list {
		s.tables[t] = true
	}
	return s, nil
}

func (s *strippedSet) has(table string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables[table]
}

// add adds the tables sc projects, and keeps the set if it grew.
func (s *strippedSet) add(sc replication.Scope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	grew := false
	for _, t := range sc.Tables {
		if t.Projected && !s.tables[t.Table] {
			s.tables[t.Table], grew = true, true
		}
	}
	if !grew {
		return nil
	}
	list := make([]string, 0, len(s.tables))
	for t := range s.tables {
		list = append(list, t)
	}
	sort.Strings(list)
	return writeFileAtomic(s.path, list)
}

// readSafeBroadcast wraps gossip's Broadcast: gossip pushes reach every
// member, whatever it may read, so a node of a cluster with read rules
// pushes nothing (sessions, which apply the rules, carry its writes).
func (r *replica) readSafeBroadcast(b func(key string, payload []byte) error) func(string, []byte) error {
	return func(key string, payload []byte) error {
		if r.clusterReadRules() {
			return nil
		}
		return b(key, payload)
	}
}

// leftOutWarned remembers the (device, table) pairs warned about.
var leftOutWarned sync.Map

// warnLeftOut logs, once per device and table, a table of a device's
// profile that its read rules leave out whole because its selection
// (filter, Where, relation) reads a field the device may not read.
func (r *replica) warnLeftOut(node hlc.NodeID, sc, lim replication.Scope) {
	if sc.All {
		return
	}
	got := sc.Restrict(lim)
	for _, t := range sc.Tables {
		if _, ok := got.Table(t.Table); ok || !lim.Selects(t.Table, "", nil, nil) && !lim.NeedsRecord(t.Table) {
			continue // kept, or a table it may not read at all
		}
		if _, seen := leftOutWarned.LoadOrStore(node.String()+"/"+t.Table, true); !seen {
			r.a.log.Warn("a table of the device's profile is left out: its filter, field match or relation reads a field the device may not read",
				"device", node, "profile", sc.Profile, "table", t.Table)
		}
	}
}
