package agent

import (
	"net/http"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/onlineread"
)

// Read permissions on the hub's API (the online path): a device's online
// reads are forwarded to the hub's API and judged there by the device's
// read rules (authz.ReadGuard), as sync judges what it sends the device.

// readGuard applies the requesting node's read rules to the API of a hub
// with read rules (authz.Security.APIReads).
func (a *Agent) readGuard(next http.Handler) http.Handler {
	return a.sec.APIReads(next, a.cfg.Role == "hub", onlineread.NodeHeader, a.writeError)
}

// nodeID returns this node's id (0 while the replica is being reset).
func (a *Agent) nodeID() hlc.NodeID {
	v, _ := a.with(func(rp *running) (any, error) { return rp.node, nil })
	n, _ := v.(hlc.NodeID)
	return n
}
