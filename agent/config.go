package agent

import (
	"io"

	"github.com/replicad/replicad/agent/config"
)

// Config is the agent's configuration (package agent/config).
type Config = config.Config

// ErrHelp is returned by ParseArgs when help was asked for (and printed).
var ErrHelp = config.ErrHelp

// ParseArgs parses the arguments of `replicad agent` (config.ParseArgs).
func ParseArgs(args []string, out io.Writer) (Config, error) { return config.ParseArgs(args, out) }
