package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/replicad/replicad/api"
)

// Duplicates lists the open suspected duplicates (all: resolved ones too).
func (c *Client) Duplicates(ctx context.Context, all bool) ([]Duplicate, error) {
	var out api.DuplicateList
	p := "/v1/duplicates"
	if all {
		p += "?all=true"
	}
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Duplicates, err
}

// ResolveDuplicate resolves the flag on table/id: action "keep" (both
// stay), "discard" (delete table/id) or "merge" (into with: it gains the
// fields it lacks, or every differing field with prefer "new"; table/id
// is deleted). with may be "" when the record matched only one.
func (c *Client) ResolveDuplicate(ctx context.Context, table, id, action, with, prefer string) (*DuplicateResolution, error) {
	var out DuplicateResolution
	body := api.DuplicateRequest{Action: action, With: with, Prefer: prefer}
	err := c.do(ctx, http.MethodPost, "/v1/duplicates/"+url.PathEscape(table)+"/"+url.PathEscape(id), body, &out)
	return &out, err
}

// Workflows lists the workflows of the agent (a hub).
func (c *Client) Workflows(ctx context.Context) ([]Workflow, error) {
	var out api.WorkflowList
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
	var out api.DeliveryPage
	p := "/v1/workflows/" + url.PathEscape(name) + "/deliveries"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	err = c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Deliveries, out.Next, err
}
