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
		var e struct {
			Error string `json:"error"`
		}
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

// Candidate is one live candidate of a conflicted field.
type Candidate struct {
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node"`
	HLC     string          `json:"hlc"`
	Time    string          `json:"time,omitempty"` // the HLC's wall clock, RFC 3339
	Deleted bool            `json:"deleted,omitempty"`
}

// Record is a record as the API shows it: its visible values (the
// last-writer-wins view) and, per conflicted field, every candidate.
type Record struct {
	Table     string                     `json:"table"`
	ID        string                     `json:"id"`
	Fields    map[string]json.RawMessage `json:"fields"`
	Conflicts map[string][]Candidate     `json:"conflicts"`
	// Bases: per conflicted field, the value its candidates started from,
	// when the replica knows it.
	Bases   map[string]*Candidate `json:"bases,omitempty"`
	Pending bool                  `json:"pending"`
	Deleted bool                  `json:"deleted,omitempty"`
}

// Put sets fields of table/id (creating it if absent).
func (c *Client) Put(ctx context.Context, table, id string, fields map[string]json.RawMessage) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodPut, recPath(table, id), map[string]any{"fields": fields}, &r)
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

// Page is one page of List.
type Page struct {
	Records []Record `json:"records"`
	Next    string   `json:"next"` // pass as after for the next page; "" at the end
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

// Conflict is a field with several live candidates.
type Conflict struct {
	Table      string      `json:"table"`
	ID         string      `json:"id"`
	Field      string      `json:"field"`
	Candidates []Candidate `json:"candidates"`
	Base       *Candidate  `json:"base,omitempty"` // the value the candidates started from, if known
	// Kind is "field", or "duplicate": a suspected duplicate record (no
	// field or candidates; With: the records it matches; Keys: their key
	// values). Resolve it with ResolveDuplicate.
	Kind string                     `json:"kind"`
	With []string                   `json:"with,omitempty"`
	Keys map[string]json.RawMessage `json:"keys,omitempty"`
}

// Conflicts lists every conflicted field.
func (c *Client) Conflicts(ctx context.Context) ([]Conflict, error) {
	var out struct {
		Conflicts []Conflict `json:"conflicts"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/conflicts", nil, &out)
	return out.Conflicts, err
}

// ResolvePick resolves a conflict by keeping candidate n.
func (c *Client) ResolvePick(ctx context.Context, table, id, field string, n int) (*Record, error) {
	return c.resolve(ctx, table, id, field, map[string]any{"pick": n})
}

// ResolveValue resolves a conflict with a new value.
func (c *Client) ResolveValue(ctx context.Context, table, id, field string, v json.RawMessage) (*Record, error) {
	return c.resolve(ctx, table, id, field, map[string]any{"value": v})
}

func (c *Client) resolve(ctx context.Context, table, id, field string, body any) (*Record, error) {
	var r Record
	p := "/v1/conflicts/" + url.PathEscape(table) + "/" + url.PathEscape(id) + "/" + url.PathEscape(field)
	err := c.do(ctx, http.MethodPost, p, body, &r)
	return &r, err
}

// SyncError is an entry of the sync-error log.
type SyncError struct {
	ID      uint64                     `json:"id"`
	Time    string                     `json:"time"`
	Table   string                     `json:"table"`
	Record  string                     `json:"record"`
	Fields  []string                   `json:"fields"`
	Losing  map[string]json.RawMessage `json:"losing"`
	Winning map[string]json.RawMessage `json:"winning"`
	Policy  string                     `json:"policy"`
	Nodes   []string                   `json:"nodes"`
	Detail  string                     `json:"detail"`
	Retried bool                       `json:"retried"`
	// Kind is "rejected" (a change undone: server-wins, permissions) or
	// "overridden" (lww or client-wins kept another value).
	Kind string `json:"kind"`
}

// SyncErrors lists the sync-error log (the first 100 entries after after).
func (c *Client) SyncErrors(ctx context.Context, after uint64) ([]SyncError, error) {
	return c.SyncErrorsOfKind(ctx, after, "")
}

// SyncErrorsOfKind lists the first 100 entries of kind ("rejected",
// "overridden"; "": every kind) after after.
func (c *Client) SyncErrorsOfKind(ctx context.Context, after uint64, kind string) ([]SyncError, error) {
	var out struct {
		Errors []SyncError `json:"errors"`
	}
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

// Stats counts what sync sessions did.
type Stats struct {
	WritesSent     uint64 `json:"writes_sent"`
	WritesApplied  uint64 `json:"writes_applied"`
	Duplicates     uint64 `json:"duplicates"`
	Parked         uint64 `json:"parked"`
	RecordsFetched uint64 `json:"records_fetched"`
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`
}

// Summary reports a sync round.
type Summary struct {
	Partners  int      `json:"partners"`
	Succeeded int      `json:"succeeded"`
	Failed    []string `json:"failed"`
	Stats     Stats    `json:"stats"`
	Millis    int64    `json:"millis"`
	// Decisions (on a device): the arbiter's decisions on the writes it
	// made before the sync; SyncErrors: those received since a sync
	// last listed them.
	Decisions  *Decisions  `json:"decisions,omitempty"`
	SyncErrors []SyncError `json:"sync_errors,omitempty"`
}

// Decisions is the state of the arbiter's decisions on a device's
// writes to client-wins and server-wins tables when a sync returns:
// State "decided" (every write made before the sync is decided and the
// outcome is on the device), "undecided" (the wait ended first:
// Undecided lists up to 20 of them, Count all), "tentative" (no
// arbitrating hub is known), "none" (no arbitrating hub and no
// client-wins or server-wins table known).
type Decisions struct {
	State     string `json:"state"`
	Detail    string `json:"detail,omitempty"`
	WaitedMs  int64  `json:"waited_ms"`
	Count     int    `json:"undecided_count,omitempty"`
	Undecided []struct {
		Table string `json:"table"`
		ID    string `json:"id"`
		Seq   uint64 `json:"seq"`
	} `json:"undecided,omitempty"`
}

// Sync syncs with every reachable partner and returns when the round ends.
func (c *Client) Sync(ctx context.Context) (*Summary, error) {
	var s Summary
	err := c.do(ctx, http.MethodPost, "/v1/sync", nil, &s)
	return &s, err
}

// SetOnline puts the node online or offline.
func (c *Client) SetOnline(ctx context.Context, online bool) error {
	return c.do(ctx, http.MethodPost, "/v1/connectivity", map[string]bool{"online": online}, nil)
}

// Peer is a sync partner's state.
type Peer struct {
	Addr        string `json:"addr"`
	Node        string `json:"node"`
	Role        string `json:"role"`
	LastSuccess string `json:"last_success,omitempty"`
	LastAttempt string `json:"last_attempt,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	Failures    int    `json:"failures"`
	NextTry     string `json:"next_try,omitempty"`
	SkewMs      int64  `json:"skew_ms"`
	Last        Stats  `json:"last_session"`
	// Direction is "dialed" (this node dials the peer) or "served" (the
	// peer dialed this node): a peer syncing both ways has two rows.
	Direction     string `json:"direction"`
	Version       string `json:"version,omitempty"`
	FirstSeen     string `json:"first_seen,omitempty"`
	LastSessionAt string `json:"last_session_at,omitempty"`
	Result        string `json:"result,omitempty"` // of the last session: ok, refused, failed
	Sessions      uint64 `json:"sessions"`
	WritesIn      uint64 `json:"writes_received"` // over every session
	WritesOut     uint64 `json:"writes_sent"`
	DurationMs    int64  `json:"last_duration_ms"`
	// Only from Peers (GET /v1/peers): writes held by the node that the
	// peer did not hold at its last session, and the sync-error log's
	// entries naming the peer.
	Pending    *uint64 `json:"pending,omitempty"`
	SyncErrors *int    `json:"sync_errors,omitempty"`
	// APIAddr and GossipAddr are what a hub this node dials advertised
	// in the sync handshake.
	APIAddr    string `json:"api_addr,omitempty"`
	GossipAddr string `json:"gossip_addr,omitempty"`
}

// Peers returns every node that synced with this one, per direction
// (GET /v1/peers).
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out struct {
		Peers []Peer `json:"peers"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/peers", nil, &out)
	return out.Peers, err
}

// TableStatus is a table's sync state.
type TableStatus struct {
	Table    string `json:"table"`
	LastSync string `json:"last_sync"`
	Policy   string `json:"policy"`
}

// SyncState is the progress of a running sync now.
type SyncState struct {
	Running  bool   `json:"running"`
	Started  string `json:"started"`
	Progress Stats  `json:"progress"`
}

// Status is GET /v1/status.
type Status struct {
	Node            string            `json:"node"`
	Role            string            `json:"role"`
	ClusterID       string            `json:"cluster_id"`
	Online          bool              `json:"online"`
	APIAddr         string            `json:"api_addr"`
	SyncAddr        string            `json:"sync_addr"`
	GossipAddr      string            `json:"gossip_addr"`
	GossipMembers   int               `json:"gossip_members,omitempty"`
	Hubs            []string          `json:"hubs"`
	UptimeS         int64             `json:"uptime_s"`
	Peers           []Peer            `json:"peers"`
	Tables          []TableStatus     `json:"tables"`
	PendingOutbound uint64            `json:"pending_outbound"` // absent (0, PendingNote "") on a hub that syncs with no other hub
	PendingNote     string            `json:"pending_outbound_note"`
	Conflicts       int               `json:"conflicts"`
	SyncErrors      int               `json:"sync_errors"` // rejected changes not retried
	Overridden      int               `json:"overridden"`  // values lww or client-wins overrode, not retried
	Parked          int               `json:"parked"`
	Policies        map[string]string `json:"policies"`
	PolicyNote      string            `json:"policy_note"`
	FeedHead        string            `json:"feed_head"`
	Drafts          int               `json:"drafts"`            // drafts kept on this node (never synced)
	HubAPI          string            `json:"hub_api,omitempty"` // where online reads go, if known
	EncryptedAtRest bool              `json:"encrypted_at_rest"` // the store's values are encrypted at rest
	Sync            SyncState         `json:"sync"`
	Disk            DiskUsage         `json:"disk"` // the store's disk use (allocated bytes)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return &s, err
}

// Change is one entry of the change feed.
type Change struct {
	Cursor string `json:"cursor"`
	Table  string `json:"table"`
	ID     string `json:"id"`
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
}

// Changes is one long-poll answer of the change feed.
type Changes struct {
	Changes []Change `json:"changes"`
	Next    string   `json:"next"` // the cursor to pass as since next time
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
		var e struct {
			Error string `json:"error"`
		}
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

// DiskUsage is a store's data directory on disk (allocated bytes), by
// kind of file.
type DiskUsage struct {
	Total int64 `json:"total_bytes"`
	SST   int64 `json:"sst_bytes"`
	WAL   int64 `json:"wal_bytes"`
	Other int64 `json:"other_bytes"`
}

// CompactResult is the answer of Compact.
type CompactResult struct {
	Before     DiskUsage `json:"before"`
	After      DiskUsage `json:"after"`
	FreedBytes int64     `json:"freed_bytes"`
	DurationMs int64     `json:"duration_ms"`
}

// Compact compacts the node's store online (it keeps serving) and
// returns its disk use before and after.
func (c *Client) Compact(ctx context.Context) (*CompactResult, error) {
	var r CompactResult
	err := c.do(ctx, http.MethodPost, "/v1/compact", struct{}{}, &r)
	return &r, err
}

// ResetResult is the answer of Reset.
type ResetResult struct {
	Node    string  `json:"node"`
	MovedTo string  `json:"moved_to"`
	Sync    Summary `json:"sync"`
}

// Reset discards the local replica (moved aside in the data directory),
// starts a fresh one with a new node id, and syncs it from the hubs.
func (c *Client) Reset(ctx context.Context) (*ResetResult, error) {
	var r ResetResult
	err := c.do(ctx, http.MethodPost, "/v1/reset", map[string]bool{"confirm": true}, &r)
	return &r, err
}
