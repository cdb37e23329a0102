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
