package profiles

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/replication"
)

// Ext is offline profiles as one of the agent's extensions. A hub given
// --profiles assigns each device the scope of its profile at every
// session (replication.Local.Assign) and enforces it; the file is
// reloaded when it changes, and a file that fails to load is reported
// while the previous profiles stay. A device keeps the scope its hub
// assigned (KeepScope).
type Ext struct {
	*State // a hub's profiles (nil: none); set by Configure

	keep            func(replication.Scope)
	file, role, dir string
	log             hclog.Logger
}

// NewExt returns the offline profiles of file (--profiles) on a node of
// role whose data directory is dir.
func NewExt(file, role, dir string, log hclog.Logger) *Ext {
	return &Ext{file: file, role: role, dir: dir, log: log}
}

// Name is "profiles".
func (e *Ext) Name() string { return "profiles" }

// Configure loads the profiles (or a device's kept scope) and sets what a
// hub assigns (the extensions after this one may narrow it).
func (e *Ext) Configure(_ extapi.Parts, ecfg *replication.Config) (err error) {
	if e.State, e.keep, err = Scopes(ecfg, e.file, e.role, e.dir, e.log); err != nil {
		return err
	}
	ecfg.Local.Assign = nil
	if e.State != nil {
		ecfg.Local.Assign = e.Assign
	}
	return nil
}

// Build registers a device's keeping of the scope it is assigned.
func (e *Ext) Build(p extapi.Parts, _ *replication.Config) error {
	if e.keep != nil {
		p.Node.OnAssigned("profile", e.keep)
	}
	return nil
}

// Start reloads the profiles file when it changes, until ctx is done.
func (e *Ext) Start(ctx context.Context, wg *sync.WaitGroup) {
	if ps := e.State; ps != nil {
		wg.Add(1)
		go func() { defer wg.Done(); ps.Watch(ctx.Done(), e.log) }()
	}
}
