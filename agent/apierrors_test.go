package agent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/httpapi"
)

// goWords are words of Go's decoder messages that mean nothing to a user
// of the API.
var goWords = regexp.MustCompile(`Go (struct|value)|json\.|map\[|\bagent\.|RawMessage|\bint\b|\*|putBody|PutBody|resolveBody|connectivityBody|resetBody|rotateBody|dupResolveBody|\bapi\.|ResolveRequest|ConnectivityRequest|ResetRequest|GossipKeyRequest|DuplicateRequest|^json:`)

func TestDecodeBodyErrorsInUsersWords(t *testing.T) {
	cases := []struct {
		body string
		into any
		want string // the whole message
	}{
		{`{"fields":[1,2]}`, &httpapi.PutBody{}, `field "fields" of the body: want an object, got an array (at offset 10)`},
		{`{"fields":"x"}`, &httpapi.PutBody{}, `field "fields" of the body: want an object, got a string (at offset 10)`},
		{`[1]`, &httpapi.PutBody{}, `the body must be a JSON object, got an array`},
		{`"x"`, &api.ResetRequest{}, `the body must be a JSON object, got a string`},
		{`{"fields":{"a":1}, "extra":true}`, &httpapi.PutBody{}, `unknown field "extra" in the body at offset 19; this request takes "fields"`},
		{`{"pick":0,"vlaue":1}`, &api.ResolveRequest{}, `unknown field "vlaue" in the body at offset 10; this request takes "pick", "value"`},
		{`{"fields":{"a":[1,2}}`, &httpapi.PutBody{}, `malformed JSON body at offset 19 (line 1, column 20): invalid character '}' after array element`},
		{"{\n  \"fields\": {\n    \"a\": tru\n}}", &httpapi.PutBody{}, `malformed JSON body at offset 28 (line 3, column 13): invalid character '\n' in literal true (expecting 'e')`},
		{`{"fields":`, &httpapi.PutBody{}, `malformed JSON body: it ends at offset 10 before the JSON is complete`},
		{`{"online":"yes"}`, &api.ConnectivityRequest{}, `field "online" of the body: want true or false, got a string (at offset 10)`},
		{`{"pick":"1"}`, &api.ResolveRequest{}, `field "pick" of the body: want an integer, got a string (at offset 8)`},
		{`{"pick":1.5}`, &api.ResolveRequest{}, `field "pick" of the body: want an integer, got 1.5 (at offset 8)`},
		{`{"pick":99999999999999999999}`, &api.ResolveRequest{}, `field "pick" of the body: want an integer, got 99999999999999999999 (out of range) (at offset 8)`},
		{`{"confirm":1}`, &api.ResetRequest{}, `field "confirm" of the body: want true or false, got a number (at offset 11)`},
		{`{"op":["install"]}`, &api.GossipKeyRequest{}, `field "op" of the body: want a string, got an array (at offset 6)`},
		{`{"action":"keep"}  {}`, &api.DuplicateRequest{}, `malformed JSON body: data after the object at offset 19`},
		{`{"op":"a\\\"b", "key":false}`, &api.GossipKeyRequest{}, `field "key" of the body: want a string, got true or false (at offset 22)`},
		{`{"confirm":"a\\\"b\\\\"}`, &api.ResetRequest{}, `field "confirm" of the body: want true or false, got a string (at offset 11)`},
		{`{"op":1e5}`, &api.GossipKeyRequest{}, `field "op" of the body: want a string, got a number (at offset 6)`},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		err := decodeBody(r, c.into)
		var ae *httpapi.Error
		if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest {
			t.Errorf("%q: got %v, want a 400", c.body, err)
			continue
		}
		if ae.Msg != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.body, ae.Msg, c.want)
		}
		if goWords.MatchString(ae.Msg) {
			t.Errorf("%q: message %q names Go types", c.body, ae.Msg)
		}
	}
}
