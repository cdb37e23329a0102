package onlineread

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/store"
)

// Limits of online reads.
const (
	readOnlineTimeout  = 10 * time.Second
	maxReadOnlineBytes = 32 << 20
)

var hubReadHTTP = &http.Client{Timeout: readOnlineTimeout}

// NodeHeader names the node an API request is made for (a device's
// forwarded online read; the hub judges it by that node's read
// permissions).
const NodeHeader = "X-Replicad-Node"

// Host is what online reads need of the agent: the current replica as
// they see it, and the public API's request validation.
type Host interface {
	extapi.Current[Replica]
	// RecordNames and PageLimit validate as the public API does
	// (extapi.Requests).
	RecordNames(r *http.Request) (table, id string, err error)
	PageLimit(r *http.Request) (int, error)
}

// Replica is what an online read needs of the current replica (on a
// device).
type Replica struct {
	// Node is this node's id: the hub judges the read by its read rules.
	Node hlc.NodeID
	// Online is whether sync is on (POST /v1/connectivity).
	Online bool
	// HubAPI is the hub API's base URL ("" none known: HubAPI).
	HubAPI string
}

// Config is a node's configuration of online reads.
type Config struct {
	// Hub is true on a hub: the reads are served locally (Local).
	Hub bool
	// TokenFile holds the hub API's bearer token ("": none).
	TokenFile string
	// ClientTLS is the TLS configuration to reach host's API over mutual
	// TLS, nil without a TLS identity.
	ClientTLS func(host string) *tls.Config
	// Local serves the record reads locally (a hub's).
	Local interface {
		Get(w http.ResponseWriter, r *http.Request) (any, error)
		List(w http.ResponseWriter, r *http.Request) (any, error)
	}
}

// API is the online reads.
type API struct {
	h Host
	c Config
}

// New returns the online reads of h.
func New(h Host, c Config) *API { return &API{h: h, c: c} }

// gate checks that an online read can be made: hub is true on a hub
// (the read is served locally); else base is the hub's API and node this
// node's id; err (503, "offline: ...") when this device is offline or
// knows no hub API, or the error of the replica being reset.
func (a *API) gate() (base string, node hlc.NodeID, hub bool, err error) {
	if a.c.Hub {
		return "", 0, true, nil
	}
	_, err = a.h.With(func(r Replica) (any, error) {
		base, node = r.HubAPI, r.Node
		_, err := DeviceGate(r.Online, r.HubAPI)
		return nil, err
	})
	return base, node, false, err
}

func offlinef(format string, args ...any) error {
	return extapi.Errorf(http.StatusServiceUnavailable, "offline: "+format, args...)
}

// hubClient returns the HTTP client for the hub's API at base: for https
// with TLS on, one that presents this node's certificate and verifies the
// hub's against the cluster CA (mutual TLS, as the hub's off-loopback API
// requires).
func (a *API) hubClient(base string) *http.Client {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" {
		return hubReadHTTP
	}
	tc := a.c.ClientTLS(u.Host)
	if tc == nil {
		return hubReadHTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.DisableKeepAlives = true // a transport per read: no idle connections left behind
	return &http.Client{Timeout: readOnlineTimeout, Transport: tr}
}

// forwardToHub makes GET base+path on the hub's API for node and returns
// its JSON object answer with "online" and "hub_api" added. Nothing is stored.
func (a *API) forwardToHub(ctx context.Context, base string, node hlc.NodeID, path string) (map[string]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, readOnlineTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, offlinef("bad hub API address %q: %v", base, err)
	}
	req.Header.Set("Accept", "application/json")
	// The hub judges the read by this node's read permissions (bound to
	// the client certificate with TLS; authz.ReadGuard).
	if node != 0 {
		req.Header.Set(NodeHeader, node.String())
	}
	if f := a.c.TokenFile; f != "" {
		tok, err := os.ReadFile(f)
		if err != nil {
			return nil, extapi.Errorf(http.StatusInternalServerError, "reading the hub API token (--hub-api-token-file): %v", err)
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
		return nil, extapi.Errorf(http.StatusBadGateway, "the hub's answer is over %d bytes", maxReadOnlineBytes)
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
		return nil, extapi.Errorf(code, "on the hub: %s", e.Error)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil || out == nil {
		return nil, extapi.Errorf(http.StatusBadGateway, "the hub's API at %s answered something that is not a JSON object", base)
	}
	out["online"] = json.RawMessage("true")
	out["hub_api"], _ = json.Marshal(base)
	return out, nil
}

// GetRecord answers GET /v1/tables/{table}/records/{id}?online=true.
func (a *API) GetRecord(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := a.h.RecordNames(r)
	if err != nil {
		return nil, err
	}
	base, node, hub, err := a.gate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.c.Local.Get(w, r)
	}
	return a.forwardToHub(r.Context(), base, node, "/v1/tables/"+url.PathEscape(table)+"/records/"+url.PathEscape(id))
}

// ListRecords answers GET /v1/tables/{table}/records?online=true&limit=N&after=ID.
func (a *API) ListRecords(w http.ResponseWriter, r *http.Request) (any, error) {
	table := r.PathValue("table")
	if err := a.checkList(r, table); err != nil {
		return nil, err
	}
	base, node, hub, err := a.gate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.c.Local.List(w, r)
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
	return a.forwardToHub(r.Context(), base, node, p)
}

// checkList validates a list's table and limit here, so a bad
// request is refused without asking the hub.
func (a *API) checkList(r *http.Request, table string) error {
	if !store.ValidTable(table) {
		return extapi.Errorf(http.StatusBadRequest, "bad table name %q", table)
	}
	_, err := a.h.PageLimit(r)
	return err
}

// Offline is the error of an online read that cannot be made (503,
// "offline: ...").
func Offline(format string, args ...any) error { return offlinef(format, args...) }
