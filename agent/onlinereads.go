package agent

import (
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// Online reads (internal/ext/onlineread) on a device: where the hub's
// API is, and whether a read can be made now (onlineHost).

// hubAPIBase returns the base URL of the hub's API: Config.HubAPI, else
// one a hub advertises in gossip (learnedHubAPI); "" if none is known.
func (a *Agent) hubAPIBase(rp *running) string {
	v := a.cfg.HubAPI
	if v == "" {
		return rp.learnedHubAPI()
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	return strings.TrimRight(v, "/")
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

// hubBase is the base URL of the API a hub advertises at addr; an API
// bound to an unspecified address (0.0.0.0, ::) is reached at host (the
// host this node reaches the hub at). It is https when this node has TLS
// on and the address is not loopback, as hubs serve it; "" if addr is
// not HOST:PORT.
func (rp *running) hubBase(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		if h = host; h == "" {
			return ""
		}
	}
	scheme := "http://"
	if rp.a.sec.hasTLS() && !secure.IsLoopback(addr) {
		scheme = "https://" // as the hub serves it (credentials.APITLS)
	}
	return scheme + net.JoinHostPort(h, port)
}

// learnedHubAPI returns the API of a hub this node knows, as a base URL;
// "" if none. First the API a hub this node dials (--hub) advertised in
// the handshake of the last session (the most recently successful one),
// then that of an alive hub gossip knows (preferring the hubs this node
// dials, then the lowest node id). A hub API bound to an unspecified
// address is reached at the host this node dials the hub's sync address
// (or gossip address) at.
func (rp *running) learnedHubAPI() string {
	best, bestAt := "", time.Time{}
	var partners []replication.PartnerStatus
	if rp.engine != nil {
		partners = rp.engine.Partners()
	}
	for _, p := range partners {
		if p.Role != "hub" || p.APIAddr == "" || !slices.Contains(rp.a.cfg.Hubs, p.Addr) {
			continue
		}
		host, _, _ := net.SplitHostPort(p.Addr)
		if secure.IsLoopback(p.APIAddr) && !secure.IsLoopback(p.Addr) {
			continue // the hub's own loopback, not this device's
		}
		if b := rp.hubBase(p.APIAddr, host); b != "" && (best == "" || p.LastSuccess.After(bestAt)) {
			best, bestAt = b, p.LastSuccess
		}
	}
	if best != "" || rp.gossip == nil {
		return best
	}
	bestName, bestDialed := "", false
	for _, m := range rp.gossip.Members() {
		if m.State != gossip.StateAlive || m.Meta.Role != gossip.RoleHub || m.Meta.APIAddr == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(m.Addr)
		base := rp.hubBase(m.Meta.APIAddr, host)
		if base == "" {
			continue
		}
		dialed := slices.Contains(rp.a.cfg.Hubs, m.Meta.SyncAddr)
		if best == "" || dialed && !bestDialed || dialed == bestDialed && m.Name < bestName {
			best, bestName, bestDialed = base, m.Name, dialed
		}
	}
	return best
}

// hasTLS reports whether this node has a TLS identity.
func (s *security) hasTLS() bool { return s != nil && s.TLS != nil }

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
type onlineHost struct{ apiHost }

func (h onlineHost) Gate() (string, bool, error) { return h.a.onlineReadGate() }

func (h onlineHost) NodeID() hlc.NodeID { return h.a.nodeID() }

func (h onlineHost) TokenFile() string { return h.a.cfg.HubAPITokenFile }

func (h onlineHost) ClientTLS(host string) *tls.Config {
	if !h.a.sec.hasTLS() {
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
