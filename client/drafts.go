package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Drafts and online reads (issue 9): see the README's "Drafts and online
// reads".

// Draft is a record's unpublished field values, kept on the device only.
type Draft struct {
	Table   string                     `json:"table"`
	ID      string                     `json:"id"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Created string                     `json:"created"`
	Updated string                     `json:"updated"`
	Rev     uint64                     `json:"rev"`
	// RecordExists: the record exists on the device (else a commit
	// creates it).
	RecordExists bool `json:"record_exists"`
	// Changed: the record was written since the draft was started.
	Changed bool `json:"changed_since_draft"`
}

// DraftedRecord is a record with its draft's values laid over its fields,
// and the draft (nil if there is none).
type DraftedRecord struct {
	Record
	Draft *Draft `json:"draft"`
}

// DraftPage is one page of Drafts.
type DraftPage struct {
	Drafts []Draft `json:"drafts"`
	Next   string  `json:"next"` // TABLE/ID to pass as after; "" at the end
}

// PutDraft sets fields in the draft of table/id (creating it): nothing
// is written to the record or replicated until CommitDraft.
func (c *Client) PutDraft(ctx context.Context, table, id string, fields map[string]json.RawMessage) (*DraftedRecord, error) {
	var r DraftedRecord
	err := c.do(ctx, http.MethodPut, recPath(table, id)+"?draft=true", map[string]any{"fields": fields}, &r)
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
	var out struct {
		Discarded Draft `json:"discarded"`
	}
	err := c.do(ctx, http.MethodDelete, draftPath(table, id), nil, &out)
	return &out.Discarded, err
}

// OnlineRecord is a record read live from the hub.
type OnlineRecord struct {
	Record
	Online bool   `json:"online"`
	HubAPI string `json:"hub_api,omitempty"`
}

// OnlinePage is one page of ListOnline.
type OnlinePage struct {
	Page
	Online bool   `json:"online"`
	HubAPI string `json:"hub_api,omitempty"`
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
