package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Duplicate is a suspected duplicate flagged by the hub: record ID of
// Table has the same key values as the records With.
type Duplicate struct {
	Kind       string                     `json:"kind"` // "duplicate"
	Table      string                     `json:"table"`
	ID         string                     `json:"id"`
	With       []string                   `json:"with"`
	Keys       map[string]json.RawMessage `json:"keys"`
	Status     string                     `json:"status"` // open, kept, merged, discarded
	Detected   string                     `json:"detected,omitempty"`
	Resolution json.RawMessage            `json:"resolution,omitempty"`
	Flag       string                     `json:"flag"`
}

// Duplicates lists the open suspected duplicates (all: resolved ones too).
func (c *Client) Duplicates(ctx context.Context, all bool) ([]Duplicate, error) {
	var out struct {
		Duplicates []Duplicate `json:"duplicates"`
	}
	p := "/v1/duplicates"
	if all {
		p += "?all=true"
	}
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Duplicates, err
}

// DuplicateResolution is the answer to ResolveDuplicate.
type DuplicateResolution struct {
	Duplicate Duplicate `json:"duplicate"`
	Record    *Record   `json:"record,omitempty"` // the survivor of a merge
}

// ResolveDuplicate resolves the flag on table/id: action "keep" (both
// stay), "discard" (delete table/id) or "merge" (into with: it gains the
// fields it lacks, or every differing field with prefer "new"; table/id
// is deleted). with may be "" when the record matched only one.
func (c *Client) ResolveDuplicate(ctx context.Context, table, id, action, with, prefer string) (*DuplicateResolution, error) {
	var out DuplicateResolution
	body := map[string]string{"action": action}
	if with != "" {
		body["with"] = with
	}
	if prefer != "" {
		body["prefer"] = prefer
	}
	err := c.do(ctx, http.MethodPost, "/v1/duplicates/"+url.PathEscape(table)+"/"+url.PathEscape(id), body, &out)
	return &out, err
}

// Workflow is a hub workflow's state.
type Workflow struct {
	Name            string   `json:"name"`
	Table           string   `json:"table"`
	Webhook         string   `json:"webhook,omitempty"`
	Command         []string `json:"command,omitempty"`
	Cursor          string   `json:"cursor"`
	FeedHead        string   `json:"feed_head"`
	State           string   `json:"state"`
	Current         string   `json:"current,omitempty"`
	CurrentAttempts int      `json:"current_attempts,omitempty"`
	CurrentError    string   `json:"current_error,omitempty"`
	NextTry         string   `json:"next_try,omitempty"`
	Delivered       uint64   `json:"delivered"`
	Failed          uint64   `json:"failed"`
	Attempts        uint64   `json:"attempts"`
	LastError       string   `json:"last_error,omitempty"`
	LastErrorAt     string   `json:"last_error_at,omitempty"`
	LastDeliveredAt string   `json:"last_delivered_at,omitempty"`
}

// Delivery is the recorded outcome of one change for a workflow.
type Delivery struct {
	Cursor   string `json:"cursor"`
	Table    string `json:"table"`
	ID       string `json:"id"`
	Origin   string `json:"origin,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Status   string `json:"status"` // delivered, failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	At       string `json:"at"`
}

// Workflows lists the workflows of the agent (a hub).
func (c *Client) Workflows(ctx context.Context) ([]Workflow, error) {
	var out struct {
		Workflows []Workflow `json:"workflows"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/workflows", nil, &out)
	return out.Workflows, err
}

// Deliveries lists a workflow's outcomes, newest first, before a cursor
// ("" for the latest); next is the before of the next page ("" at the
// end).
func (c *Client) Deliveries(ctx context.Context, name, before string, limit int) (ds []Delivery, next string, err error) {
	q := url.Values{}
	if before != "" {
		q.Set("before", before)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
		Next       string     `json:"next"`
	}
	p := "/v1/workflows/" + url.PathEscape(name) + "/deliveries"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	err = c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Deliveries, out.Next, err
}
