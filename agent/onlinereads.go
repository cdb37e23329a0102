package agent

import (
	"crypto/tls"
	"net/http"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/ext/onlineread"
)

// Online reads (internal/ext/onlineread) on a device: where the hub's
// API is, and whether a read can be made now (onlineHost).

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

// onlineReadGate checks that an online read can be made: this node is a
// device, online, and knows the hub's API. hub is true on a hub (serve
// the read locally).
func (a *Agent) onlineReadGate() (base string, hub bool, err error) {
	if a.cfg.Role == "hub" {
		return "", true, nil
	}
	_, err = a.with(func(rp *running) (any, error) {
		base, err = onlineread.DeviceGate(rp.engine.Online(), a.hubAPIBase(rp))
		return nil, err
	})
	return base, false, err
}

// onlineHost is the online reads' Host.
type onlineHost struct{ current[extapi.Records] }

func (h onlineHost) Gate() (string, bool, error) { return h.a.onlineReadGate() }

func (h onlineHost) NodeID() hlc.NodeID { return h.a.nodeID() }

func (h onlineHost) TokenFile() string { return h.a.cfg.HubAPITokenFile }

func (h onlineHost) ClientTLS(host string) *tls.Config { return h.a.sec.ClientTLS(host) }

func (h onlineHost) GetRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	return h.a.records().Get(w, r)
}

func (h onlineHost) ListRecords(w http.ResponseWriter, r *http.Request) (any, error) {
	return h.a.records().List(w, r)
}
