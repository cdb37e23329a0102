package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
)

// DefaultAddr is the agent's default API address.
const DefaultAddr = "127.0.0.1:7400"

// EnvAddr names the environment variable holding the API address.
const EnvAddr = "REPLICAD_ADDR"

// Client talks to one agent. The zero value is not usable; use New.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client for the agent at addr (host:port or a URL); an
// empty addr means $REPLICAD_ADDR, else DefaultAddr.
func New(addr string) *Client {
	if addr == "" {
		addr = os.Getenv(EnvAddr)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{base: strings.TrimRight(addr, "/"), hc: newHTTPClient()}
}

// Addr returns the base URL.
func (c *Client) Addr() string { return c.base }

// APIError is an error answer of the agent.
type APIError struct {
	Status  int    // HTTP status
	Message string // the body's "error"
}

func (e *APIError) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(resp.Status + " " + string(data))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bad answer from the agent: %w", err)
		}
	}
	return nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func recPath(table, id string) string {
	return "/v1/tables/" + url.PathEscape(table) + "/records/" + url.PathEscape(id)
}

// Put sets fields of table/id (creating it if absent).
func (c *Client) Put(ctx context.Context, table, id string, fields map[string]json.RawMessage) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodPut, recPath(table, id), api.PutRequest{Fields: fields}, &r)
	return &r, err
}

// Get returns table/id; a missing record is an *APIError with status 404.
func (c *Client) Get(ctx context.Context, table, id string) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodGet, recPath(table, id), nil, &r)
	return &r, err
}

// Delete deletes table/id.
func (c *Client) Delete(ctx context.Context, table, id string) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodDelete, recPath(table, id), nil, &r)
	return &r, err
}

// List returns up to limit records of table with ids after after (0: the
// agent's default of 100).
func (c *Client) List(ctx context.Context, table, after string, limit int) (*Page, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p Page
	err := c.do(ctx, http.MethodGet, "/v1/tables/"+url.PathEscape(table)+"/records?"+q.Encode(), nil, &p)
	return &p, err
}

// Conflicts lists every conflicted field.
func (c *Client) Conflicts(ctx context.Context) ([]Conflict, error) {
	var out api.ConflictList
	err := c.do(ctx, http.MethodGet, "/v1/conflicts", nil, &out)
	return out.Conflicts, err
}

// ResolvePick resolves a conflict by keeping candidate n.
func (c *Client) ResolvePick(ctx context.Context, table, id, field string, n int) (*Record, error) {
	return c.resolve(ctx, table, id, field, api.ResolveRequest{Pick: &n})
}

// ResolveValue resolves a conflict with a new value.
func (c *Client) ResolveValue(ctx context.Context, table, id, field string, v json.RawMessage) (*Record, error) {
	return c.resolve(ctx, table, id, field, api.ResolveRequest{Value: v})
}

func (c *Client) resolve(ctx context.Context, table, id, field string, body api.ResolveRequest) (*Record, error) {
	var r Record
	p := "/v1/conflicts/" + url.PathEscape(table) + "/" + url.PathEscape(id) + "/" + url.PathEscape(field)
	err := c.do(ctx, http.MethodPost, p, body, &r)
	return &r, err
}

// SyncErrors lists the sync-error log (the first 100 entries after after).
func (c *Client) SyncErrors(ctx context.Context, after uint64) ([]SyncError, error) {
	return c.SyncErrorsOfKind(ctx, after, "")
}

// SyncErrorsOfKind lists the first 100 entries of kind ("rejected",
// "overridden"; "": every kind) after after.
func (c *Client) SyncErrorsOfKind(ctx context.Context, after uint64, kind string) ([]SyncError, error) {
	var out api.SyncErrorList
	p := "/v1/sync-errors?after=" + strconv.FormatUint(after, 10)
	if kind != "" {
		p += "&kind=" + url.QueryEscape(kind)
	}
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Errors, err
}

// Retry re-applies the losing change of sync error id as a new write.
func (c *Client) Retry(ctx context.Context, id uint64) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodPost, "/v1/sync-errors/"+strconv.FormatUint(id, 10)+"/retry", nil, &r)
	return &r, err
}

// Sync syncs with every reachable partner and returns when the round ends.
func (c *Client) Sync(ctx context.Context) (*Summary, error) {
	var s Summary
	err := c.do(ctx, http.MethodPost, "/v1/sync", nil, &s)
	return &s, err
}

// SetOnline puts the node online or offline.
func (c *Client) SetOnline(ctx context.Context, online bool) error {
	return c.do(ctx, http.MethodPost, "/v1/connectivity", api.ConnectivityRequest{Online: &online}, nil)
}

// Peers returns every node that synced with this one, per direction
// (GET /v1/peers).
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out api.PeerList
	err := c.do(ctx, http.MethodGet, "/v1/peers", nil, &out)
	return out.Peers, err
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return &s, err
}

// Changes returns the changes after cursor since ("" or "0": from the
// start; "now": only future ones), waiting up to timeout for one
// (0: answer at once).
func (c *Client) Changes(ctx context.Context, since string, timeout time.Duration) (*Changes, error) {
	q := url.Values{"since": {since}, "timeout": {timeout.String()}}
	var out Changes
	err := c.do(ctx, http.MethodGet, "/v1/changes?"+q.Encode(), nil, &out)
	return &out, err
}

// Follow streams the change feed after since (server-sent events) and
// calls fn for each change until ctx is done, fn returns an error, or the
// stream ends.
func (c *Client) Follow(ctx context.Context, since string, fn func(Change) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/changes?since="+url.QueryEscape(since), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		var e api.Error
		json.Unmarshal(b, &e)
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ch Change
			if err := json.Unmarshal([]byte(data), &ch); err != nil {
				continue
			}
			if err := fn(ch); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return sc.Err()
}

// Compact compacts the node's store online (it keeps serving) and
// returns its disk use before and after.
func (c *Client) Compact(ctx context.Context) (*CompactResult, error) {
	var r CompactResult
	err := c.do(ctx, http.MethodPost, "/v1/compact", struct{}{}, &r)
	return &r, err
}

// Reset discards the local replica (moved aside in the data directory),
// starts a fresh one with a new node id, and syncs it from the hubs.
func (c *Client) Reset(ctx context.Context) (*ResetResult, error) {
	var r ResetResult
	err := c.do(ctx, http.MethodPost, "/v1/reset", api.ResetRequest{Confirm: true}, &r)
	return &r, err
}
