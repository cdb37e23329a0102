package config

import (
	"regexp"
	"strings"
	"time"
)

// AtRestConfig says where the store's encryption key comes from: at most
// one of the three (none: the store's values are plain).
type AtRestConfig struct {
	// KeyFile holds the key: 32 raw bytes or 64 hex characters. It must
	// not be readable by group or others (mode 0600 or 0400).
	KeyFile string
	// KeyEnv names an environment variable holding the key (64 hex
	// characters, or 32 raw bytes). The agent removes it from its
	// environment once read, so that the commands it runs (workflows) do
	// not inherit it.
	KeyEnv string
	// KeyCommand is run with /bin/sh -c; its standard output is the key
	// (as in a file). It must succeed within KeyCommandTimeout.
	KeyCommand string
}

// KeyCommandTimeout bounds --encryption-key-command.
const KeyCommandTimeout = 30 * time.Second

// On reports whether a key source is configured.
func (c *AtRestConfig) On() bool { return c.KeyFile != "" || c.KeyEnv != "" || c.KeyCommand != "" }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *AtRestConfig) validate() error {
	var set []string
	for _, s := range []struct{ key, v string }{
		{"encryption_key_file", c.KeyFile},
		{"encryption_key_env", c.KeyEnv},
		{"encryption_key_command", c.KeyCommand},
	} {
		if s.v != "" {
			set = append(set, s.key)
		}
	}
	if len(set) > 1 {
		return keyErr(set[1], "the encryption key has one source: %s and %s are both set", set[0], set[1])
	}
	if c.KeyEnv != "" && !envName.MatchString(c.KeyEnv) {
		return keyErr("encryption_key_env", "%q is not an environment variable name", c.KeyEnv)
	}
	if c.KeyCommand != "" && strings.TrimSpace(c.KeyCommand) == "" {
		return keyErr("encryption_key_command", "empty command")
	}
	return nil
}
