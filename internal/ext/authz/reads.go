package authz

import (
	"errors"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Read permissions: the read lists of the permission rules
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
//     too (Reads.RulesFor: the hub-signed grants once known; until then a
//     device peer of a cluster with read rules is served only the system
//     tables).
//   - The hub's API answers a device identified by its client
//     certificate (or, without TLS, by the node id it claims) only with
//     the records and fields its rules allow: the same limit narrows each
//     record before its view is built (the assembly's readGuard and readView).
//
// A device's own sync errors (_replicad_errors) name values of other
// devices' writes: a restricted device is served only the error records
// that name it (a filter on the "nodes" field publishSyncError adds).

// ReadHost is what the read rules need of the node: its store, a logger,
// the cached system records and the write pipeline (the hub's marker).
type ReadHost interface {
	extapi.Node
	extapi.Writer
	SysRecord(table, id string) *crdt.Record
}

// Reads applies the read rules of a node: a hub's configured rules
// (perms), or on a device the rules of the hub-signed grants (grants; nil
// without TLS).
type Reads struct {
	h      ReadHost
	hub    bool
	perms  *Rules
	grants *Grants
}

// NewReads returns the read rules of a node (a hub when hub).
func NewReads(h ReadHost, hub bool, perms *Rules, grants *Grants) *Reads {
	return &Reads{h: h, hub: hub, perms: perms, grants: grants}
}

// RulesFor returns the rules that judge what node may read, and whether
// they are known: on a hub its configuration; on a device the rules of
// the hub-signed grants naming node (TLS clusters only), unknown without
// one.
func (r *Reads) RulesFor(node hlc.NodeID) (*Rules, bool) {
	if r.hub {
		return r.perms, true
	}
	if r.grants == nil {
		return nil, false
	}
	return r.grants.Rules(node, time.Now())
}

// PeerLimit is replication.Local.Limit: a device peer's read limit. On a
// device that does not know the peer's rules, a cluster with read rules
// (guardedCluster: with TLS any grant at all) serves the peer only the
// system tables (its own sync errors among them); a cluster without them
// works as before.
func (r *Reads) PeerLimit(p replication.Peer) (replication.Scope, bool) {
	if p.Role != "device" {
		return replication.Scope{}, false
	}
	rules, known := r.RulesFor(p.Node)
	if known {
		return rules.ReadLimit(p.Node)
	}
	if r.guardedCluster() {
		return LimitScope(p.Node, nil), true
	}
	return replication.Scope{}, false
}

// The hubs of a cluster with read rules say so in a system record, so
// that a device knows to hold back from peers whose rules it does not
// know (the table's writers: node.SysTables).
const (
	SecurityTable = node.SecurityTable
	ReadsMarker   = "reads"
)

// guardedCluster reports whether a device peer whose rules are unknown
// must be held back: the cluster's hubs have read rules, or (with TLS)
// this node holds any verified grant, which no device can forge (the
// marker could be written by a device that matches no write rule).
func (r *Reads) guardedCluster() bool {
	if !r.hub && r.grants != nil && r.grants.HasGrants(time.Now()) {
		return true
	}
	return r.ClusterReadRules()
}

// ClusterReadRules reports whether the cluster's hubs have read rules (by
// this node's own rules on a hub, by the hubs' marker on a device).
func (r *Reads) ClusterReadRules() bool {
	if r.hub {
		return r.perms.HasReadRules()
	}
	rec := r.h.SysRecord(SecurityTable, ReadsMarker) // every local write asks (gossip pushes)
	if rec == nil || !rec.Exists() {
		return false
	}
	v, ok := rec.Get("restricted")
	return ok && len(v) == 1 && v[0] == 0xc3 // true
}

// Mark keeps the hub's marker equal to its rules.
func (r *Reads) Mark() error {
	has := r.perms.HasReadRules()
	want := crdt.MustValue(has)
	if rec, err := r.h.Store().Get(SecurityTable, ReadsMarker); err == nil {
		if v, ok := rec.Get("restricted"); ok && string(v) == string(want) {
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	} else if !has {
		return nil
	}
	_, err := r.h.Write(SecurityTable, ReadsMarker, []crdt.FieldValue{{Name: "restricted", Value: want}}, false, nil)
	return err
}

// Assign is what a hub with read rules assigns a device: its profile
// (profile, nil: none) narrowed to its read limit.
func (r *Reads) Assign(profile func(replication.Peer) (replication.Scope, bool)) func(replication.Peer) (replication.Scope, bool) {
	perms := r.perms
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

// SafeBroadcast wraps gossip's Broadcast: gossip pushes reach every
// member, whatever it may read, so a node of a cluster with read rules
// pushes nothing (sessions, which apply the rules, carry its writes).
func (r *Reads) SafeBroadcast(b func(key string, payload []byte) error) func(string, []byte) error {
	return func(key string, payload []byte) error {
		if r.ClusterReadRules() {
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
func (r *Reads) warnLeftOut(node hlc.NodeID, sc, lim replication.Scope) {
	if sc.All {
		return
	}
	got := sc.Restrict(lim)
	for _, t := range sc.Tables {
		if _, ok := got.Table(t.Table); ok || !lim.Selects(t.Table, "", nil, nil) && !lim.NeedsRecord(t.Table) {
			continue // kept, or a table it may not read at all
		}
		if _, seen := leftOutWarned.LoadOrStore(node.String()+"/"+t.Table, true); !seen {
			r.h.Log().Warn("a table of the device's profile is left out: its filter, field match or relation reads a field the device may not read",
				"device", node, "profile", sc.Profile, "table", t.Table)
		}
	}
}
