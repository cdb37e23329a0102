package agent

import (
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/httpapi"
)

// Online reads (internal/ext/onlineread) on a device: where the hub's
// API is (onlineread.Replica).

// hubAPIBase returns the base URL of the hub's API (onlineread.HubAPI):
// Config.HubAPI, else one a hub advertised; "" if none is known.
func (a *Agent) hubAPIBase(rp *running) string {
	d := onlineread.Discovery{Configured: a.cfg.HubAPI, Hubs: a.cfg.Hubs, TLS: a.sec.HasTLS()}
	if rp.engine != nil {
		d.Partners = rp.engine.Partners()
	}
	if rp.gossip != nil && d.Configured == "" {
		d.Members = rp.gossip.Members()
	}
	return onlineread.HubAPI(d)
}

// advertisedAPI is the API address this node advertises
// (onlineread.Advertised).
func (a *Agent) advertisedAPI() string {
	if a.apiLn != nil {
		return onlineread.Advertised(a.cfg.APIAddr, a.apiLn.Addr())
	}
	return onlineread.Advertised(a.cfg.APIAddr, nil)
}

// advertise returns the API and gossip addresses this node tells the
// peers that dial it, in its sync handshake's Welcome ("" for none).
func (rp *running) advertise() (api, gossip string) {
	if rp.gossip != nil {
		gossip = rp.gossip.Addr()
	}
	return rp.a.advertisedAPI(), gossip
}

// onlineReads are the online reads (internal/ext/onlineread): on a
// device, a read is forwarded to the hub's API, judged there by this
// node's read rules (readGuard, security.go); a hub serves it locally.
func (a *Agent) onlineReads() *onlineread.API {
	return onlineread.New(hostOf(a, func(rp *running) onlineread.Replica {
		return onlineread.Replica{Node: rp.node, Online: rp.engine.Online(), HubAPI: a.hubAPIBase(rp)}
	}), onlineread.Config{Hub: a.cfg.Role == "hub", TokenFile: a.cfg.HubAPITokenFile, ClientTLS: a.sec.ClientTLS, Local: httpapi.Records{Core: a.coreHost()}})
}
