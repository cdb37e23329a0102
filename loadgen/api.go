package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient is a lean HTTP client of the agent's API for load: a
// transport that keeps one connection per concurrent caller (the default
// keeps two per host, so 32 callers would open a connection per request)
// and request bodies built once, so that the load tool spends little of
// the machine's CPU.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(addr string, conns int) *apiClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &apiClient{base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// do sends a request and drains the answer; a status other than want is
// an error.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, want int) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// put sets one field of a record (a durable local write).
func (c *apiClient) put(ctx context.Context, table, id string, body []byte) error {
	return c.do(ctx, http.MethodPut, "/v1/tables/"+table+"/records/"+id, body, http.StatusOK)
}

// get reads a record.
func (c *apiClient) get(ctx context.Context, table, id string) error {
	return c.do(ctx, http.MethodGet, "/v1/tables/"+table+"/records/"+id, nil, http.StatusOK)
}

// putBodies are one-field bodies with values of about 30 bytes.
var putBodies = func() [][]byte {
	var out [][]byte
	for i := range 64 {
		out = append(out, fmt.Appendf(nil, `{"fields":{"status":"a value of some thirty bytes %02d"}}`, i))
	}
	return out
}()
