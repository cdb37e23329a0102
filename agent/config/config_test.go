package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The sample config documents the defaults: loading it changes nothing.
func TestExampleConfigIsDefaults(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadFile("../../examples/replicad.hcl"); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Hubs, want.Join = []string{}, []string{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("examples/replicad.hcl:\ngot  %+v\nwant %+v", c, want)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte(`role = "hub"
data_dir = "/from/file"
hub = ["h1:1"]
pull_interval = "5s"
policy = { jobs = "manual" }
`), 0o644)
	c, err := ParseArgs([]string{"--config", path, "--data-dir", "/from/flag", "--policy", "a=lww", "--policy", "b=server-wins"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != "hub" || c.DataDir != "/from/flag" || c.PullInterval != 5*time.Second || len(c.Hubs) != 1 {
		t.Errorf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Policies, map[string]string{"a": "lww", "b": "server-wins"}) {
		t.Errorf("policies %v", c.Policies)
	}
}

func TestConfigErrorsNamePosition(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ src, want string }{
		{"bogus = 1\n", "c.hcl:1"},
		{"role = \"x\"\n", "c.hcl:1:1: role"},
		{"\nlog_level = \"loud\"\n", "c.hcl:2:1: log_level"},
		{"max_clock_offset = 5\n", "c.hcl:1:1: max_clock_offset"},
		{"policy = { t = \"nope\" }\n", "c.hcl:1:1: policy"},
		{"hub = \"a:1\"\n", "c.hcl:1"},
		{"max_sessions = -1\n", "c.hcl:1:1: max_sessions"},
		{"max_sessions = 5000\n", "c.hcl:1:1: max_sessions"},
	} {
		path := filepath.Join(dir, "c.hcl")
		os.WriteFile(path, []byte(tc.src), 0o644)
		c := DefaultConfig()
		err := c.LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}

// TestConfigUnclosedQuote: a file with one unclosed quote (HCL then
// reports an error on every following line) gives one short line naming
// the first error's file, line and column.
func TestConfigUnclosedQuote(t *testing.T) {
	var src strings.Builder
	src.WriteString("role = \"hub\"\ndata_dir = \"/var/lib/replicad\n") // line 2: the quote is not closed
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&src, "# a comment\npull_interval = \"%ds\"\n", i+1)
	}
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte(src.String()), 0o644)
	c := DefaultConfig()
	err := c.LoadFile(path)
	if err == nil {
		t.Fatal("loaded a file with an unclosed quote")
	}
	msg := err.Error()
	if want := path + ":2:30: "; !strings.HasPrefix(msg, "config: "+want) {
		t.Errorf("error %.300q...: want it to start with %q", msg, "config: "+want)
	}
	if len(msg) > 300 || strings.Contains(msg, "\n") || strings.Count(msg, path) != 1 {
		t.Errorf("error of %d bytes, want one short line naming one position: %.400q", len(msg), msg)
	}
	if !strings.Contains(msg, "more errors") {
		t.Errorf("error %q does not say that more errors follow", msg)
	}
}

// TestMaxSessions: a hub defaults to more sync sessions than a device;
// the file and the flag set it (the flag wins).
func TestMaxSessions(t *testing.T) {
	c := DefaultConfig()
	if c.Sessions() != DefaultDeviceSessions {
		t.Errorf("device default %d, want %d", c.Sessions(), DefaultDeviceSessions)
	}
	c.Role = "hub"
	if c.Sessions() != DefaultHubSessions {
		t.Errorf("hub default %d, want %d", c.Sessions(), DefaultHubSessions)
	}
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("max_sessions = 200\n"), 0o644)
	got, err := ParseArgs([]string{"--config", path}, os.Stderr)
	if err != nil || got.Sessions() != 200 {
		t.Fatalf("from the file: %v, %v", got.Sessions(), err)
	}
	got, err = ParseArgs([]string{"--config", path, "--max-sessions", "8"}, os.Stderr)
	if err != nil || got.Sessions() != 8 {
		t.Fatalf("the flag over the file: %v, %v", got.Sessions(), err)
	}
	if _, err := ParseArgs([]string{"--max-sessions", "-3"}, os.Stderr); err == nil || !strings.Contains(err.Error(), "--max-sessions") {
		t.Fatalf("a negative flag: %v", err)
	}
}

// The guard keys load from the file and are validated with the key's
// position.
func TestGuardConfigKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte(`api_host = ["hub.example.com"]
api_cors_origin = ["https://dispatch.example.com"]
api_max_conns = 10
sync_max_conns = 20
api_read_timeout = "5s"
max_parked = 7
`), 0o644)
	c := DefaultConfig()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	g := c.Security.Guard
	if !reflect.DeepEqual(g.APIHosts, []string{"hub.example.com"}) || g.CORSOrigins[0] != "https://dispatch.example.com" ||
		g.APIMaxConns != 10 || g.SyncMaxConns != 20 || g.APIReadTimeout != 5*time.Second || g.MaxParked != 7 {
		t.Errorf("got %+v", g)
	}
	if _, err := ParseArgs([]string{"--api-cors-origin", "evil.example"}, os.Stderr); err == nil || !strings.Contains(err.Error(), "--api-cors-origin") {
		t.Errorf("a bad origin: %v", err)
	}
	if _, err := ParseArgs([]string{"--api-max-conns", "-1"}, os.Stderr); err == nil || !strings.Contains(err.Error(), "--api-max-conns") {
		t.Errorf("a negative bound: %v", err)
	}
}

func TestMaxLiveQueries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.hcl")
	os.WriteFile(path, []byte("max_live_queries = 40\n"), 0o644)
	got, err := ParseArgs([]string{"--config", path}, os.Stderr)
	if err != nil || got.MaxLiveQueries != 40 {
		t.Fatalf("from the file: %v, %v", got.MaxLiveQueries, err)
	}
	got, err = ParseArgs([]string{"--config", path, "--max-live-queries", "8"}, os.Stderr)
	if err != nil || got.MaxLiveQueries != 8 {
		t.Fatalf("the flag over the file: %v, %v", got.MaxLiveQueries, err)
	}
	if _, err := ParseArgs([]string{"--max-live-queries", "-3"}, os.Stderr); err == nil || !strings.Contains(err.Error(), "--max-live-queries") {
		t.Fatalf("a negative flag: %v", err)
	}
}
