package agent

import (
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/profiles"
	"github.com/replicad/replicad/replication"
)

// Offline profiles (internal/ext/profiles). A hub given --profiles
// assigns each device the scope of its profile at every session
// (replication.Local.Assign) and enforces it; the file is reloaded when
// it changes; a file that fails to load is reported and the previous
// profiles stay. A device keeps the scope its hub assigned
// (profiles.KeepScope).

// setupProfiles wires offline profiles and read permissions into the
// sync configuration, in this order: a hub assigns a device its profile
// narrowed to its read limit (readperm.go); a device, told its scope,
// keeps the tables it held projected (readperm.go), then the scope.
func (r *running) setupProfiles(ecfg *replication.Config) (err error) {
	cfg := r.a.cfg
	var keep func(replication.Scope)
	if r.profiles, keep, err = profiles.Scopes(ecfg, cfg.Profiles, cfg.Role, cfg.DataDir, r.a.log); err != nil {
		return err
	}
	var profile func(replication.Peer) (replication.Scope, bool)
	if r.profiles != nil {
		profile = r.profiles.Assign
	}
	ecfg.Local.Limit = r.reads().PeerLimit
	ecfg.Local.Assign = profile
	if cfg.Role == "hub" {
		if perms := r.a.sec.Rules(); perms.HasReadRules() {
			ecfg.Local.Assign = r.reads().Assign(profile)
		}
		return nil
	}
	stripped, err := authz.KeepStripped(ecfg, cfg.DataDir, profiles.WriteFileAtomic, r.a.log)
	if err != nil {
		return err
	}
	r.n.OnAssigned("stripped", stripped)
	if keep != nil {
		r.n.OnAssigned("profile", keep)
	}
	ecfg.Local.OnAssigned = r.n.Assigned()
	return nil
}
