package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// PreviewProfile asks a hub what device's profile (or the named one, if
// not empty) would put on it.
func (c *Client) PreviewProfile(ctx context.Context, device, profile string) (*Preview, error) {
	q := url.Values{"device": {device}}
	if profile != "" {
		q.Set("profile", profile)
	}
	var p Preview
	err := c.do(ctx, http.MethodGet, "/v1/profiles/preview?"+q.Encode(), nil, &p)
	return &p, err
}

// Profiles returns, from a hub, its loaded profiles; from a device, the
// scope it holds (raw JSON: replication.Scope).
func (c *Client) Profiles(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodGet, "/v1/profiles", nil, &out)
	return out, err
}

// ReloadProfiles makes a hub reload its profiles file now.
func (c *Client) ReloadProfiles(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/profiles/reload", nil, nil)
}
