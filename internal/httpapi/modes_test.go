package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadModes(t *testing.T) {
	for _, c := range []struct {
		query             string
		draftOK, onlineOK bool
		draft, online     bool
		bad               string
	}{
		{"", true, true, false, false, ""},
		{"?draft", true, true, true, false, ""},
		{"?draft=1", true, false, true, false, ""},
		{"?draft=false&online=true", true, true, false, true, ""},
		{"?draft=yes", true, true, false, false, "draft=\"yes\""},
		{"?online=true", true, false, false, false, "online=true applies to reads"},
		{"?draft=true", false, true, false, false, "GET /v1/drafts"},
		{"?draft=true&online=true", true, true, false, false, "do not go together"},
	} {
		r := httptest.NewRequest("GET", "/x"+c.query, nil)
		d, o, err := ReadModes(r, c.draftOK, c.onlineOK)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%s: %v, want an error with %q", c.query, err, c.bad)
			}
			continue
		}
		if err != nil || d != c.draft || o != c.online {
			t.Errorf("%s: %v %v %v", c.query, d, o, err)
		}
	}
}

// TestIntParamNamesPosition: a bad paging number is a 400 naming the
// parameter and the position, as a query's options are.
func TestIntParamNamesPosition(t *testing.T) {
	for _, v := range []string{"-1", "ten", "1.5"} {
		r := httptest.NewRequest(http.MethodGet, "/v1/tables/t/records?limit="+v, nil)
		_, err := IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
		if err == nil || !strings.Contains(err.Error(), "limit: at offset 0:") || !strings.Contains(err.Error(), v) {
			t.Errorf("limit=%s: %v", v, err)
		}
	}
}
