package agent

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHubAPIConfig(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:7500", "hub.example:443", "http://10.0.0.1:7500", "https://hub.example/", "https://hub.example:8443"} {
		if err := checkHubAPI(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"hub", "ftp://hub:1", "http://", "http://hub:1/?x=1", "127.0.0.1:99999"} {
		if err := checkHubAPI(bad); err == nil || !strings.Contains(err.Error(), "hub_api") {
			t.Errorf("%q: %v, want an error naming hub_api", bad, err)
		}
	}
	c, err := ParseArgs([]string{"--hub-api", "127.0.0.1:7500", "--hub-api-token-file", "/t"}, os.Stderr)
	if err != nil || c.HubAPI != "127.0.0.1:7500" || c.HubAPITokenFile != "/t" {
		t.Fatalf("flags: %+v %v", c, err)
	}
	if _, err := ParseArgs([]string{"--hub-api", "nope"}, os.Stderr); err == nil || !strings.HasPrefix(err.Error(), "--hub-api") {
		t.Fatalf("bad --hub-api: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("hub_api = \"https://hub:7500\"\nhub_api_token_file = \"/tok\"\n"), 0o644)
	c = DefaultConfig()
	if err := c.LoadFile(path); err != nil || c.HubAPI != "https://hub:7500" || c.HubAPITokenFile != "/tok" {
		t.Fatalf("file: %+v %v", c, err)
	}
	a := &Agent{cfg: c}
	rp := &replica{a: a}
	if got := a.hubAPIBase(rp); got != "https://hub:7500" {
		t.Errorf("base %q", got)
	}
	a.cfg.HubAPI = "127.0.0.1:1/"
	if got := a.hubAPIBase(rp); got != "http://127.0.0.1:1" {
		t.Errorf("base %q", got)
	}
	a.cfg.HubAPI = ""
	if got := a.hubAPIBase(rp); got != "" { // no gossip: none learned
		t.Errorf("base %q", got)
	}
	for addr, want := range map[string]string{"127.0.0.1:7400": "127.0.0.1:7400", "127.0.0.1:0": "", "[::1]:7400": "[::1]:7400"} {
		a.cfg.APIAddr = addr
		if got := a.advertisedAPI(); got != want {
			t.Errorf("advertised %q for %s, want %q", got, addr, want)
		}
	}
}

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
		d, o, err := readModes(r, c.draftOK, c.onlineOK)
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
