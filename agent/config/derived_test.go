package config

import (
	"bytes"
	"strings"
	"testing"
)

// TestWatchersWithin: watch connections share the sync listener's bound
// with the session slots: by default they take what is left; a
// configured bound over what is left is kept and said so.
func TestWatchersWithin(t *testing.T) {
	c := DefaultConfig()
	c.Role = "hub" // DefaultHubSessions slots, DefaultHubWatchers watchers
	room := 2000 - c.Sessions() - 16
	if n, over := c.WatchersWithin(2000); n != min(DefaultHubWatchers, room) || over {
		t.Errorf("default within 2000: %d %v", n, over)
	}
	if n, over := c.WatchersWithin(10); n != 0 || over {
		t.Errorf("default within 10: %d %v (no room left)", n, over)
	}
	c.MaxWatchers = 5000
	if n, over := c.WatchersWithin(2000); n != 5000 || !over {
		t.Errorf("configured over the room: %d %v", n, over)
	}
	c.MaxWatchers = 10
	if n, over := c.WatchersWithin(2000); n != 10 || over {
		t.Errorf("configured within the room: %d %v", n, over)
	}
}

// TestDerived: the logger writes JSON lines with LogJSON, at LogLevel;
// TableKeys lists each table's key fields.
func TestDerived(t *testing.T) {
	c := DefaultConfig()
	c.LogJSON, c.LogLevel = true, "warn"
	var buf bytes.Buffer
	log := c.NewLogger(&buf)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `"@message":"shown"`) {
		t.Errorf("log: %q", out)
	}
	c.Tables = map[string]TableConfig{"contacts": {Keys: []string{"email"}}, "jobs": {}}
	keys := c.TableKeys()
	if len(keys) != 2 || len(keys["contacts"]) != 1 || keys["contacts"][0] != "email" || len(keys["jobs"]) != 0 {
		t.Errorf("keys %v", keys)
	}
}
