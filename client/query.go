package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/api"
)

// Query is a query over one table (GET /v1/tables/{table}/records with
// where, order ...), or over a view declared on the hub (GET
// /v1/views/{name}) when View is set: the view then gives the table,
// where clause and order. The zero value of each option leaves it to the
// agent's default.
type Query struct {
	Table string
	View  string
	// Where selects records: a CEL expression over the record's fields
	// by name, id, now, today, days(), hours() and device.*.
	Where string
	// Order lists fields, each with a leading "-" for descending; ties
	// go by id.
	Order []string
	// Limit bounds a page (0: the agent's default of 100).
	Limit int
	// Cursor continues from the page whose Next it is.
	Cursor string
	// Fields projects the records to these fields (none: every field).
	Fields []string
	// Explain adds the plan (index used, records examined) to the page.
	Explain bool
	// Draft lays each record's draft over it; Online asks the hub live.
	Draft, Online bool
}

// path is the request path of q with its parameters, and extra ones
// (count, watch ...).
func (q Query) path(extra url.Values) string {
	v := url.Values{}
	if q.Where != "" || q.View == "" {
		// Always given on a table: GET .../records with none of the
		// query's parameters is the plain list (limit and after).
		v.Set("where", q.Where)
	}
	if len(q.Order) > 0 {
		v.Set("order", strings.Join(q.Order, ","))
	}
	if q.Limit != 0 { // a negative one too: the agent refuses it
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if len(q.Fields) > 0 {
		v.Set("fields", strings.Join(q.Fields, ","))
	}
	for _, b := range []struct {
		name string
		on   bool
	}{{"explain", q.Explain}, {"draft", q.Draft}, {"online", q.Online}} {
		if b.on {
			v.Set(b.name, "true")
		}
	}
	for k, vs := range extra {
		v[k] = vs
	}
	p := "/v1/tables/" + url.PathEscape(q.Table) + "/records"
	if q.View != "" {
		p = "/v1/views/" + url.PathEscape(q.View)
	}
	if len(v) == 0 {
		return p
	}
	return p + "?" + v.Encode()
}

// Query runs q and returns one page: its records in q's order, Next (the
// cursor of the next page, "" at the end) and, with Explain, the Plan. A
// query the agent refuses (a malformed where clause, an unknown order
// field, a cursor of another query, a limit out of range) is an
// *APIError with status 400 whose message names the option and the
// offset in it.
func (c *Client) Query(ctx context.Context, q Query) (*Page, error) {
	var p Page
	err := c.do(ctx, http.MethodGet, q.path(nil), nil, &p)
	return &p, err
}

// Count returns how many records q matches (its Limit and Cursor do not
// apply).
func (c *Client) Count(ctx context.Context, q Query) (int, error) {
	var n api.Count
	err := c.do(ctx, http.MethodGet, q.path(url.Values{"count": {"true"}}), nil, &n)
	return n.Count, err
}

// Views lists the views declared on the hub, sorted by name, each with
// how many records it holds on this node.
func (c *Client) Views(ctx context.Context) ([]View, error) {
	var out api.ViewList
	err := c.do(ctx, http.MethodGet, "/v1/views", nil, &out)
	return out.Views, err
}

// View runs the view name: q's Limit, Cursor, Fields and Explain apply
// (its Table, Where and Order are the view's).
func (c *Client) View(ctx context.Context, name string, q Query) (*Page, error) {
	q.View = name
	return c.Query(ctx, q)
}

// WatchPoll is one long-poll of a live query (watch=true without
// server-sent events): the events after lastEventID ("": the result,
// first), waiting up to timeout for one. Pass the answer's LastEventID
// next time.
func (c *Client) WatchPoll(ctx context.Context, q Query, lastEventID string, timeout time.Duration) (*WatchPage, error) {
	extra := url.Values{"watch": {"true"}, "timeout": {timeout.String()}}
	if lastEventID != "" {
		extra.Set("last_event_id", lastEventID)
	}
	var out WatchPage
	err := c.do(ctx, http.MethodGet, q.path(extra), nil, &out)
	return &out, err
}
