package agent

import (
	"crypto/tls"
	"net"
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

// advertisedAPI is the API address this node advertises in its gossip
// metadata: the bound address once listening, else the configured one
// unless its port is chosen at bind (0).
func (a *Agent) advertisedAPI() string {
	addr := a.cfg.APIAddr
	if a.apiLn != nil {
		addr = a.apiLn.Addr().String()
	} else if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return ""
	}
	if len(addr) > 160 { // gossip.Meta's limit
		return ""
	}
	return addr
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
		if !rp.engine.Online() {
			return nil, onlineread.Offline("this device is set offline (POST /v1/connectivity {\"online\": true}, or replicad online, to reconnect); online reads need the hub")
		}
		if base = a.hubAPIBase(rp); base == "" {
			return nil, onlineread.Offline("no hub API address is known for online reads: start the agent with --hub HOST:PORT (a hub's sync address: the hub tells its API address when this device syncs with it), --hub-api HOST:PORT (the hub's --api-addr), or gossip with a hub (--join), which advertises it")
		}
		return nil, nil
	})
	return base, false, err
}

// onlineHost is the online reads' Host.
type onlineHost struct{ current[extapi.Records] }

func (h onlineHost) Gate() (string, bool, error) { return h.a.onlineReadGate() }

func (h onlineHost) NodeID() hlc.NodeID { return h.a.nodeID() }

func (h onlineHost) TokenFile() string { return h.a.cfg.HubAPITokenFile }

func (h onlineHost) ClientTLS(host string) *tls.Config {
	if !h.a.sec.HasTLS() {
		return nil
	}
	return h.a.sec.TLS.Client(host)
}

func (h onlineHost) GetRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	return h.a.records().Get(w, r)
}

func (h onlineHost) ListRecords(w http.ResponseWriter, r *http.Request) (any, error) {
	return h.a.records().List(w, r)
}
