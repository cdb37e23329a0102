package onlineread

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// Where a device's online reads go: the hub's API, configured or learned
// from the hubs (their sync handshake's Welcome, their gossip metadata).

// Discovery is what a device knows of its hubs.
type Discovery struct {
	Configured string                      // --hub-api ("": learn it)
	Hubs       []string                    // the sync addresses this node dials (--hub)
	Partners   []replication.PartnerStatus // the engine's partners
	Members    []gossip.Member             // gossip's members (none without gossip)
	TLS        bool                        // this node has TLS on
}

// HubAPI returns the base URL of the hub's API: the configured one, else
// one a hub advertised (learnedHubAPI); "" if none is known.
func HubAPI(d Discovery) string {
	v := d.Configured
	if v == "" {
		return d.learnedHubAPI()
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	return strings.TrimRight(v, "/")
}

// hubBase is the base URL of the API a hub advertises at addr; an API
// bound to an unspecified address (0.0.0.0, ::) is reached at host (the
// host this node reaches the hub at). It is https when this node has TLS
// on and the address is not loopback, as hubs serve it; "" if addr is
// not HOST:PORT.
func hubBase(addr, host string, tlsOn bool) string {
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
	if tlsOn && !secure.IsLoopback(addr) {
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
func (d Discovery) learnedHubAPI() string {
	best, bestAt := "", time.Time{}
	for _, p := range d.Partners {
		if p.Role != "hub" || p.APIAddr == "" || !slices.Contains(d.Hubs, p.Addr) {
			continue
		}
		host, _, _ := net.SplitHostPort(p.Addr)
		if secure.IsLoopback(p.APIAddr) && !secure.IsLoopback(p.Addr) {
			continue // the hub's own loopback, not this device's
		}
		if b := hubBase(p.APIAddr, host, d.TLS); b != "" && (best == "" || p.LastSuccess.After(bestAt)) {
			best, bestAt = b, p.LastSuccess
		}
	}
	if best != "" {
		return best
	}
	bestName, bestDialed := "", false
	for _, m := range d.Members {
		if m.State != gossip.StateAlive || m.Meta.Role != gossip.RoleHub || m.Meta.APIAddr == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(m.Addr)
		base := hubBase(m.Meta.APIAddr, host, d.TLS)
		if base == "" {
			continue
		}
		dialed := slices.Contains(d.Hubs, m.Meta.SyncAddr)
		if best == "" || dialed && !bestDialed || dialed == bestDialed && m.Name < bestName {
			best, bestName, bestDialed = base, m.Name, dialed
		}
	}
	return best
}

// Advertised is the API address a node advertises to its peers (gossip
// metadata, the sync handshake's Welcome): the bound address once
// listening (bound non-nil), else the configured one unless its port is
// chosen at bind (0); "" over gossip.Meta's limit.
func Advertised(configured string, bound net.Addr) string {
	addr := configured
	if bound != nil {
		addr = bound.String()
	} else if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return ""
	}
	if len(addr) > 160 { // gossip.Meta's limit
		return ""
	}
	return addr
}

// DeviceGate is Host.Gate on a device: an online read needs it online
// and knowing the hub's API (base, HubAPI); else the error says how.
func DeviceGate(online bool, base string) (string, error) {
	if !online {
		return "", Offline("this device is set offline (POST /v1/connectivity {\"online\": true}, or replicad online, to reconnect); online reads need the hub")
	}
	if base == "" {
		return "", Offline("no hub API address is known for online reads: start the agent with --hub HOST:PORT (a hub's sync address: the hub tells its API address when this device syncs with it), --hub-api HOST:PORT (the hub's --api-addr), or gossip with a hub (--join), which advertises it")
	}
	return base, nil
}
