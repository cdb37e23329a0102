package agent

import (
	"net"

	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/netguard"
)

// guardListener bounds a listener's connections and keeps its accept loop
// alive through temporary errors (internal/netguard).
func (a *Agent) guardListener(l net.Listener, name string, max int) net.Listener {
	return netguard.Wrap(l, name, httpapi.ConnBound(max), a.log.Named(name))
}
