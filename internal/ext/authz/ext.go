package authz

import (
	"context"
	"sync"

	"github.com/replicad/replicad/agent/config"

	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// Ext is the permissions as one of the agent's extensions, on one
// replica: the security state (Security, which outlives resets) wired
// into the replica's engine and hooks, and started with it.
type Ext struct {
	*node.Enforcer // the write permissions, a hub's system tables' rules (nil without rules off a hub); set by Configure

	sec     *Security
	h       Host     // the enforcer's
	plain   ReadHost // the read rules' and the grant publisher's
	sys     *node.SysJudge
	refused func()
	dir     string
	save    func(path string, v any) error
	rules   func() []config.Permission // the permission rules a hub grants, as configured
}

// NewExt returns the permissions of sec on a replica: the enforcer on h,
// the read rules and grants on plain, a hub's judge of system-table
// writes sys, refused counting each peer write a grant refuses; a
// device keeps the tables it held projected in dir (written with save);
// a hub grants the rules rules returns.
func NewExt(sec *Security, h Host, plain ReadHost, sys *node.SysJudge, refused func(), dir string, save func(path string, v any) error, rules func() []config.Permission) *Ext {
	return &Ext{sec: sec, h: h, plain: plain, sys: sys, refused: refused, dir: dir, save: save, rules: rules}
}

// Name is "authz".
func (e *Ext) Name() string { return "authz" }

func (e *Ext) hub() bool { return e.sec != nil && e.sec.cfg.Role == "hub" }

// Reads returns the replica's read rules (Security.Reads).
func (e *Ext) Reads() *Reads { return e.sec.Reads(e.plain) }

// Publisher returns the publisher of this hub's grants (nothing is
// published without TLS or off a hub).
func (e *Ext) Publisher() *Publisher {
	return e.sec.Publisher(e.plain, e.rules())
}

// Configure wires the write permissions, the grants and the read rules
// into the engine: a peer's limit; on a hub with read rules, the scope
// assigned (set by the extensions before this one: the profile)
// narrowed to the device's read limit; on a device, the tables it held
// kept projected when told its scope (an observer registered before
// those of Build).
func (e *Ext) Configure(p extapi.Parts, ecfg *replication.Config) error {
	e.Enforcer = e.sec.Wire(ecfg, e.h, e.h.Store(), e.sys, e.refused)
	ecfg.Local.Limit = e.Reads().PeerLimit
	if e.hub() {
		if e.sec.Rules().HasReadRules() {
			ecfg.Local.Assign = e.Reads().Assign(ecfg.Local.Assign)
		}
		return nil
	}
	stripped, err := KeepStripped(ecfg, e.dir, e.save, e.h.Log())
	if err != nil {
		return err
	}
	p.Node.OnAssigned("stripped", stripped)
	return nil
}

// Build keeps gossip pushes out under read rules and registers the
// hooks: the write-backs queued in an applied batch; after a committed
// one, the grants' cache (with TLS), then the write-backs carried out.
func (e *Ext) Build(p extapi.Parts, ecfg *replication.Config) error {
	if p.Gossip != nil {
		ecfg.Broadcast = e.Reads().SafeBroadcast(p.Gossip.Broadcast)
	}
	if e.Enforcer != nil {
		p.Node.OnApply("permissions", e.Enforcer.Hook)
	}
	if s := e.sec; s != nil && s.TLS != nil {
		p.Node.OnRemoteApplied("grants", s.Grants.Applied)
	}
	if e.Enforcer != nil {
		p.Node.OnRemoteApplied("permissions", e.Enforcer.Applied)
	}
	return nil
}

// Start publishes whether read permissions are in force (a hub), then
// carries out the write-backs left queued and publishes a hub's grants
// (Security.Start).
func (e *Ext) Start(ctx context.Context, wg *sync.WaitGroup) {
	if e.hub() {
		if err := e.Reads().Mark(); err != nil {
			e.h.Log().Error("publishing whether read permissions are in force", "error", err)
		}
	}
	e.sec.Start(ctx, e.Enforcer, e.Publisher(), wg)
}
