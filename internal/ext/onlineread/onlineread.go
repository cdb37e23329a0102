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

// Host is what online reads need of the agent.
type Host interface {
	// Gate checks that an online read can be made: base is the hub's API;
	// hub is true on a hub (the read is served locally); err (503,
	// "offline: ...") when this device is offline or knows no hub API.
	Gate() (base string, hub bool, err error)
	// NodeID is this node's id (0 while its replica is being reset).
	NodeID() hlc.NodeID
	// TokenFile holds the hub API's bearer token ("": none).
	TokenFile() string
	// ClientTLS is the TLS configuration to reach host's API over mutual
	// TLS, nil without a TLS identity.
	ClientTLS(host string) *tls.Config
	// RecordNames and PageLimit validate as the public API does
	// (extapi.Requests).
	RecordNames(r *http.Request) (table, id string, err error)
	PageLimit(r *http.Request) (int, error)
	// GetRecord and ListRecords are the local reads a hub serves.
	GetRecord(w http.ResponseWriter, r *http.Request) (any, error)
	ListRecords(w http.ResponseWriter, r *http.Request) (any, error)
}

// API is the online reads.
type API struct{ h Host }

// New returns the online reads of h.
func New(h Host) *API { return &API{h: h} }

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
	tc := a.h.ClientTLS(u.Host)
	if tc == nil {
		return hubReadHTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.DisableKeepAlives = true // a transport per read: no idle connections left behind
	return &http.Client{Timeout: readOnlineTimeout, Transport: tr}
}

// forwardToHub makes GET base+path on the hub's API and returns its JSON
// object answer with "online" and "hub_api" added. Nothing is stored.
func (a *API) forwardToHub(ctx context.Context, base, path string) (map[string]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, readOnlineTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, offlinef("bad hub API address %q: %v", base, err)
	}
	req.Header.Set("Accept", "application/json")
	// The hub judges the read by this node's read permissions (bound to
	// the client certificate with TLS; online_readperm.go).
	if n := a.h.NodeID(); n != 0 {
		req.Header.Set(NodeHeader, n.String())
	}
	if f := a.h.TokenFile(); f != "" {
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
	base, hub, err := a.h.Gate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.h.GetRecord(w, r)
	}
	return a.forwardToHub(r.Context(), base, "/v1/tables/"+url.PathEscape(table)+"/records/"+url.PathEscape(id))
}

// ListRecords answers GET /v1/tables/{table}/records?online=true&limit=N&after=ID.
func (a *API) ListRecords(w http.ResponseWriter, r *http.Request) (any, error) {
	table := r.PathValue("table")
	if err := a.checkList(r, table); err != nil {
		return nil, err
	}
	base, hub, err := a.h.Gate()
	if err != nil {
		return nil, err
	}
	if hub {
		return a.h.ListRecords(w, r)
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
