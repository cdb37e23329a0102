package agent

import (
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/ext/peers"
	"github.com/replicad/replicad/internal/ext/profiles"
	"github.com/replicad/replicad/internal/ext/workflows"
)

// extensions returns the replica's extensions (internal/ext/*) in their
// fixed order, built on its node: at each phase (extapi.Configurer,
// Builder, Starter, Stopper) the agent calls them in this order, which
// is thus each hook kind's order (ARCHITECTURE.md, "The hook order"):
//
//   - peers: the peer table, told of every session;
//   - dedupe: duplicate tracking, first of the in-batch hooks;
//   - profiles: what a hub assigns (before authz narrows it), a device's
//     kept scope (observed at Build: after authz's stripped tables);
//   - authz: the permissions, the grants and the read rules;
//   - arbiter (the arbitrating hub only): its decisions, after the
//     permission write-backs;
//   - workflows: a hub's, asking the arbiter whether a change is decided.
//
// The replica's own hooks follow them (build). Extensions never import
// each other: what one needs of another is handed here.
func (r *running) extensions() []extapi.Extension {
	a, cfg := r.a, r.a.cfg
	hub := cfg.Role == "hub"
	arbitrates := hub && !cfg.NoArbiter
	exts := []extapi.Extension{
		peers.NewExt(r.store, a.log),
		dedupe.NewExt(r.host("dedupe"), arbitrates, cfg.TableKeys()),
		profiles.NewExt(cfg.Profiles, cfg.Role, cfg.DataDir, a.log),
		authz.NewExt(a.sec, r.host("authz"), extHost{Node: r.n, log: a.log}, r.sys, a.metrics.PeerRefused, cfg.DataDir, profiles.WriteFileAtomic,
			func() []config.Permission { return a.cfg.Security.Permissions }),
	}
	var dec workflows.Decisions // nil: not the arbitrating hub
	if arbitrates {
		arb := arbiter.New(r.host("arbiter"))
		exts, dec = append(exts, arb), arb
	}
	return append(exts, workflows.NewExt(r.host("workflows"), a.feed, dec, cfg.Workflows, hub, a.log))
}

// extOf returns the replica's extension of type T (the zero T if it has
// none).
func extOf[T extapi.Extension](r *running) T {
	for _, e := range r.exts {
		if t, ok := e.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}
