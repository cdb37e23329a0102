package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// apiCall sends one request to n's API and returns the status, the
// response's headers and its body.
func apiCall(t *testing.T, n *node, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// goTypeWords are pieces of Go's own decoder messages: type names and
// the package prefix, which mean nothing to a user of the API.
var goTypeWords = regexp.MustCompile(`Go (struct|value)|json\.|json:|map\[|RawMessage|\bagent\.|[a-z]+Body\b`)

// Every route that takes a JSON body answers a body of the wrong shape
// with a 400 in the user's words (the field, what it takes, the offset),
// and stores nothing.
func TestBodyErrorsNameFieldsNotGoTypes(t *testing.T) {
	d := startNode(t, "device")
	cases := []struct {
		method, path, body string
		want               string // a piece of the message
	}{
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":[1,2]}`, `field "fields" of the body: want an object, got an array (at offset 11)`},
		{"PUT", "/v1/tables/jobs/records/j1", `[{"fields":{}}]`, `the body must be a JSON object, got an array`},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":1},"feilds":{}}`, `unknown field "feilds" in the body at offset 18; this request takes "fields"`},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":[1,}}`, `malformed JSON body at offset 18 (line 1, column 19): invalid character '}'`},
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{"fields":"a=1"}`, `field "fields" of the body: want an object, got a string`},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":"0"}`, `field "pick" of the body: want an integer, got a string`},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":0.5}`, `field "pick" of the body: want an integer, got 0.5`},
		{"POST", "/v1/duplicates/jobs/j1", `{"action":["keep"]}`, `field "action" of the body: want a string, got an array`},
		{"POST", "/v1/connectivity", `{"online":"no"}`, `field "online" of the body: want true or false, got a string`},
		{"POST", "/v1/connectivity", `{"online":false,"why":1}`, `unknown field "why" in the body at offset 16; this request takes "online"`},
		{"POST", "/v1/reset", `{"confirm":"yes"}`, `field "confirm" of the body: want true or false, got a string`},
		{"POST", "/v1/gossip/keys", `{"op":1}`, `field "op" of the body: want a string, got a number`},
		{"POST", "/v1/gossip/keys", `{"op":"use",`, `malformed JSON body: it ends at offset 12 before the JSON is complete`},
	}
	for _, c := range cases {
		code, _, b := apiCall(t, d, c.method, c.path, c.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != http.StatusBadRequest || json.Unmarshal(b, &e) != nil {
			t.Errorf("%s %s %s: got %d %s, want 400 {\"error\":...}", c.method, c.path, c.body, code, b)
			continue
		}
		if !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s %s:\n got %q\nwant it to contain %q", c.method, c.path, c.body, e.Error, c.want)
		}
		if goTypeWords.MatchString(e.Error) {
			t.Errorf("%s %s %s: %q names Go types", c.method, c.path, c.body, e.Error)
		}
	}
	ctx := context.Background()
	if ch, err := d.client().Changes(ctx, "0", 0); err != nil || len(ch.Changes) != 0 {
		t.Errorf("after rejected requests the feed holds %+v (%v); want nothing", ch, err)
	}
	if st, err := d.client().Status(ctx); err != nil || !st.Online {
		t.Errorf("after rejected requests: status %+v (%v); want still online", st, err)
	}
}
