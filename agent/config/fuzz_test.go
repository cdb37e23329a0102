package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzConfigFile: any config file loads or fails with an error; it never
// panics, and what loads validates.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"role = \"hub\"\n",
		"policy = { jobs = \"manual\" }\nhub = [\"h:1\"]\n",
		"permission \"t\" {\n  nodes = [\"ab/8\"]\n  write = [\"jobs:status\"]\n}\n",
		"api_auth = \"token\"\ntls_ca = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\n",
		"max_clock_offset = \"-5s\"\n",
		"data_dir = \"\"\n",
		"${",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		path := filepath.Join(dir, "c.hcl")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		if err := c.LoadFile(path); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadFile accepted a config that does not validate: %v", err)
		}
	})
}
