package agent

import (
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/internal/node"
)

// extHost is what the assembly hands each extension as its Host: the node
// (store, clock, node id, the write pipeline, the policies, the sync
// errors) and a logger named for the extension.
type extHost struct {
	*node.Node
	log hclog.Logger
}

// Log returns the extension's logger.
func (h extHost) Log() hclog.Logger { return h.log }

// host returns the Host of the extension name.
func (r *running) host(name string) extHost { return extHost{Node: r.n, log: r.a.log.Named(name)} }
