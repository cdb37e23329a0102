package agent

import (
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
	if err := c.LoadFile("../examples/replicad.hcl"); err != nil {
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
		{"role = \"x\"\n", "c.hcl:1,1: role"},
		{"\nlog_level = \"loud\"\n", "c.hcl:2,1: log_level"},
		{"max_clock_offset = 5\n", "c.hcl:1,1: max_clock_offset"},
		{"policy = { t = \"nope\" }\n", "c.hcl:1,1: policy"},
		{"hub = \"a:1\"\n", "c.hcl:1"},
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
