package httpapi

import (
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
