package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/replicad/replicad/api"
)

// Drafts and online reads (issue 9): see the README's "Drafts and online
// reads".

// PutDraft sets fields in the draft of table/id (creating it): nothing
// is written to the record or replicated until CommitDraft.
func (c *Client) PutDraft(ctx context.Context, table, id string, fields map[string]json.RawMessage) (*DraftedRecord, error) {
	var r DraftedRecord
	err := c.do(ctx, http.MethodPut, recPath(table, id)+"?draft=true", api.PutRequest{Fields: fields}, &r)
	return &r, err
}

// GetDraft returns table/id with its draft laid over it.
func (c *Client) GetDraft(ctx context.Context, table, id string) (*DraftedRecord, error) {
	var r DraftedRecord
	err := c.do(ctx, http.MethodGet, recPath(table, id)+"?draft=true", nil, &r)
	return &r, err
}

// Drafts lists drafts (of table only, unless ""), up to limit (0: 100)
// after the draft named by after (TABLE/ID, "" from the start).
func (c *Client) Drafts(ctx context.Context, table, after string, limit int) (*DraftPage, error) {
	q := url.Values{}
	if table != "" {
		q.Set("table", table)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p DraftPage
	err := c.do(ctx, http.MethodGet, "/v1/drafts?"+q.Encode(), nil, &p)
	return &p, err
}

func draftPath(table, id string) string {
	return "/v1/drafts/" + url.PathEscape(table) + "/" + url.PathEscape(id)
}

// CommitDraft publishes the draft of table/id as an ordinary write and
// returns the record.
func (c *Client) CommitDraft(ctx context.Context, table, id string) (*Record, error) {
	var r Record
	err := c.do(ctx, http.MethodPost, draftPath(table, id)+"/commit", nil, &r)
	return &r, err
}

// DiscardDraft discards the draft of table/id and returns it.
func (c *Client) DiscardDraft(ctx context.Context, table, id string) (*Draft, error) {
	var out api.DiscardedDraft
	err := c.do(ctx, http.MethodDelete, draftPath(table, id), nil, &out)
	return &out.Discarded, err
}

// GetOnline reads table/id live from the hub through the agent (nothing
// is stored on the device). Offline it fails with status 503.
func (c *Client) GetOnline(ctx context.Context, table, id string) (*OnlineRecord, error) {
	var r OnlineRecord
	err := c.do(ctx, http.MethodGet, recPath(table, id)+"?online=true", nil, &r)
	return &r, err
}

// ListOnline lists records of table live from the hub (see List).
func (c *Client) ListOnline(ctx context.Context, table, after string, limit int) (*OnlinePage, error) {
	q := url.Values{"online": {"true"}}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p OnlinePage
	err := c.do(ctx, http.MethodGet, "/v1/tables/"+url.PathEscape(table)+"/records?"+q.Encode(), nil, &p)
	return &p, err
}
