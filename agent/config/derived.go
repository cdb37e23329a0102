package config

import (
	"io"

	"github.com/hashicorp/go-hclog"
)

// NewLogger returns the agent's logger: text (colored on a terminal) or
// JSON lines with LogJSON, on w, at LogLevel.
func (c Config) NewLogger(w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "replicad",
		Level:      c.HclogLevel(),
		Output:     w,
		JSONFormat: c.LogJSON,
		Color:      hclog.AutoColor,
	})
}

// TableKeys are each configured table's key fields (duplicate
// detection).
func (c *Config) TableKeys() map[string][]string {
	keys := map[string][]string{}
	for t, tc := range c.Tables {
		keys[t] = tc.Keys
	}
	return keys
}

// WatchersWithin is the bound on watch connections served by a sync
// listener of bound connections: they share it with the session slots
// (and 16 spare), so by default they leave room for every slot; over
// says a configured MaxWatchers leaves too few for them.
func (c *Config) WatchersWithin(bound int) (n int, over bool) {
	n = c.Watchers()
	room := max(0, bound-c.Sessions()-16)
	if c.MaxWatchers == 0 {
		return min(n, room), false
	}
	return n, n > room
}
