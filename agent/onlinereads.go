package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/replicad/replicad/gossip"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// Online mode (issue 9): while connected, a device reads records outside
// its offline profile live from the hub: GET .../records/{id}?online=true
// and GET .../records?online=true are forwarded to the hub's HTTP API
// (Config.HubAPI, else the API address a hub advertises in its gossip
// metadata) and answered with the hub's view, marked "online": true.
// Nothing read online is stored here: the answer goes to the caller only.
// Offline (set offline with POST /v1/connectivity, or the hub's API
// unreachable) such reads fail with 503 and a reason starting "offline:".
// A hub holds every record: it answers online reads from its own store.

// Limits of online reads.
const (
	readOnlineTimeout  = 10 * time.Second
	maxReadOnlineBytes = 32 << 20
)

var hubReadHTTP = &http.Client{Timeout: readOnlineTimeout}

// hubAPIBase returns the base URL of the hub's API: Config.HubAPI, else
// one a hub advertises in gossip (learnedHubAPI); "" if none is known.
func (a *Agent) hubAPIBase(rp *replica) string {
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
func (rp *replica) advertise() (api, gossip string) {
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
func (rp *replica) hubBase(addr, host string) string {
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
		scheme = "https://" // as the hub serves it (security.apiTLS)
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
func (rp *replica) learnedHubAPI() string {
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

func offlinef(format string, args ...any) error {
	return httpapi.Errorf(http.StatusServiceUnavailable, "offline: "+format, args...)
}

// onlineReadGate checks that an online read can be made: this node is a
// device, online, and knows the hub's API. hub is true on a hub (serve
// the read locally).
func (a *Agent) onlineReadGate() (base string, hub bool, err error) {
	if a.cfg.Role == "hub" {
		return "", true, nil
	}
	_, err = a.with(func(rp *replica) (any, error) {
		if !rp.engine.Online() {
			return nil, offlinef("this device is set offline (POST /v1/connectivity {\"online\": true}, or replicad online, to reconnect); online reads need the hub")
		}
		if base = a.hubAPIBase(rp); base == "" {
			return nil, offlinef("no hub API address is known for online reads: start the agent with --hub HOST:PORT (a hub's sync address: the hub tells its API address when this device syncs with it), --hub-api HOST:PORT (the hub's --api-addr), or gossip with a hub (--join), which advertises it")
		}
		return nil, nil
	})
	return base, false, err
}

// hubClient returns the HTTP client for the hub's API at base: for https
// with TLS on, one that presents this node's certificate and verifies the
// hub's against the cluster CA (mutual TLS, as the hub's off-loopback API
// requires).
func (a *Agent) hubClient(base string) *http.Client {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || !a.sec.hasTLS() {
		return hubReadHTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = a.sec.tls.Client(u.Host)
	tr.DisableKeepAlives = true // a transport per read: no idle connections left behind
	return &http.Client{Timeout: readOnlineTimeout, Transport: tr}
}

// forwardToHub makes GET base+path on the hub's API and returns its JSON
// object answer with "online" and "hub_api" added. Nothing is stored.
func (a *Agent) forwardToHub(ctx context.Context, base, path string) (map[string]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, readOnlineTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, offlinef("bad hub API address %q: %v", base, err)
	}
	req.Header.Set("Accept", "application/json")
	// The hub judges the read by this node's read permissions (bound to
	// the client certificate with TLS; online_readperm.go).
	if n := a.nodeID(); n != 0 {
		req.Header.Set(nodeHeader, n.String())
	}
	if f := a.cfg.HubAPITokenFile; f != "" {
		tok, err := os.ReadFile(f)
		if err != nil {
			return nil, httpapi.Errorf(http.StatusInternalServerError, "reading the hub API token (--hub-api-token-file): %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := a.hubClient(base).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, offlinef("the hub's API at %s did not answer within %s", base, readOnlineTimeout)
		}
		return nil, offlinef("the hub's API at %s is unreachable: %v", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReadOnlineBytes+1))
	if err != nil {
		return nil, offlinef("reading the hub's answer from %s: %v", base, err)
	}
	if len(data) > maxReadOnlineBytes {
		return nil, httpapi.Errorf(http.StatusBadGateway, "the hub's answer is over %d bytes", maxReadOnlineBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(resp.Status)
		}
		code := resp.StatusCode
		if code < 400 || code >= 500 {
			code = http.StatusBadGateway
		}
		return nil, httpapi.Errorf(code, "on the hub: %s", e.Error)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil || out == nil {
		return nil, httpapi.Errorf(http.StatusBadGateway, "the hub's API at %s answered something that is not a JSON object", base)
	}
	out["online"] = json.RawMessage("true")
	out["hub_api"], _ = json.Marshal(base)
	return out, nil
}

// getRecordOnline: GET /v1/tables/{table}/records/{id}?online=true.
func (a *Agent) getRecordOnline(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	base, hub, err := a.onlineReadGate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.getRecord(w, r)
	}
	return a.forwardToHub(r.Context(), base, "/v1/tables/"+url.PathEscape(table)+"/records/"+url.PathEscape(id))
}

// listRecordsOnline: GET /v1/tables/{table}/records?online=true&limit=N&after=ID.
func (a *Agent) listRecordsOnline(w http.ResponseWriter, r *http.Request) (any, error) {
	table := r.PathValue("table")
	if err := checkOnlineList(r, table); err != nil {
		return nil, err
	}
	base, hub, err := a.onlineReadGate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.listRecords(w, r)
	}
	q := url.Values{}
	if s := r.URL.Query().Get("limit"); s != "" {
		q.Set("limit", s)
	}
	if s := r.URL.Query().Get("after"); s != "" {
		q.Set("after", s)
	}
	p := "/v1/tables/" + url.PathEscape(table) + "/records"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return a.forwardToHub(r.Context(), base, p)
}

// checkOnlineList validates a list's table and limit here, so a bad
// request is refused without asking the hub.
func checkOnlineList(r *http.Request, table string) error {
	if !store.ValidTable(table) {
		return httpapi.Errorf(http.StatusBadRequest, "bad table name %q", table)
	}
	_, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	return err
}

// hasTLS reports whether this node has a TLS identity.
func (s *security) hasTLS() bool { return s != nil && s.tls != nil }
