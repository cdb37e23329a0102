package agent

import "github.com/replicad/replicad/agent/config"

// The configuration's names the tests use (package agent/config).
type (
	SecurityConfig = config.SecurityConfig
	AtRestConfig   = config.AtRestConfig
	Permission     = config.Permission
	TableConfig    = config.TableConfig
	WorkflowConfig = config.WorkflowConfig
)

// DefaultConfig returns the configuration of `replicad agent` without
// flags or file (config.DefaultConfig).
func DefaultConfig() Config { return config.DefaultConfig() }

// Values of SecurityConfig (config.APIAuthToken ...).
const (
	APIAuthToken     = config.APIAuthToken
	PeerRelayOwn     = config.PeerRelayOwn
	PeerRelayGranted = config.PeerRelayGranted
)
