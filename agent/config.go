package agent

import (
	"io"

	"github.com/replicad/replicad/agent/config"
)

// The configuration lives in package agent/config; these names keep the
// agent's API (cmd/replicad, the tests) as it was.
type (
	Config         = config.Config
	SecurityConfig = config.SecurityConfig
	GuardConfig    = config.GuardConfig
	AtRestConfig   = config.AtRestConfig
	Permission     = config.Permission
	TableConfig    = config.TableConfig
	WorkflowConfig = config.WorkflowConfig
)

// ErrHelp is returned by ParseArgs when help was asked for (and printed).
var ErrHelp = config.ErrHelp

// DefaultConfig returns the configuration of `replicad agent` without
// flags or file (config.DefaultConfig).
func DefaultConfig() Config { return config.DefaultConfig() }

// ParseArgs parses the arguments of `replicad agent` (config.ParseArgs).
func ParseArgs(args []string, out io.Writer) (Config, error) { return config.ParseArgs(args, out) }

// Values of SecurityConfig (config.APIAuthAuto ...).
const (
	APIAuthAuto      = config.APIAuthAuto
	APIAuthToken     = config.APIAuthToken
	PeerRelayOwn     = config.PeerRelayOwn
	PeerRelayGranted = config.PeerRelayGranted
)
