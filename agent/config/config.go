package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Defaults of Config. The defaults run a single device node out of the box.
const (
	DefaultDataDir      = "./replicad-data"
	DefaultRole         = "device"
	DefaultAPIAddr      = "127.0.0.1:7400"
	DefaultSyncAddr     = "127.0.0.1:7401"
	DefaultHubGossip    = 7402 // a hub's gossip port on its sync host when --gossip-addr is not given
	DefaultLogLevel     = "info"
	DefaultClusterID    = "replicad"
	DefaultPullInterval = 60 * time.Second
	// DefaultHubSessions and DefaultDeviceSessions are the default bounds
	// on concurrent sync sessions.
	DefaultHubSessions    = 64
	DefaultDeviceSessions = 16
	DefaultHubWatchers    = 1024
	DefaultMaxBodyBytes   = 1 << 20
	// DefaultMaxLiveQueries bounds the live queries served at once.
	DefaultMaxLiveQueries = 256
)

// Policies a table may be given (DESIGN.md section 3).
var Policies = []string{"lww", "client-wins", "server-wins", "manual"}

// LogLevels are the accepted --log-level values.
var LogLevels = []string{"trace", "debug", "info", "warn", "error", "off"}

// Config is the agent's configuration. Each field is one flag of
// `replicad agent` and one key of the HCL config file (the name in the hcl
// tag); flags override the file, the file overrides the defaults.
type Config struct {
	// DataDir holds the store and the lock file (default ./replicad-data).
	DataDir string
	// Role is "hub" (a full replica that devices dial) or "device"
	// (default).
	Role string
	// APIAddr is the HTTP API's host:port (default 127.0.0.1:7400).
	APIAddr string
	// SyncAddr is the host:port sync sessions are accepted on (default
	// 127.0.0.1:7401).
	SyncAddr string
	// GossipAddr is the host:port memberlist binds to. Empty means the
	// default: off for a device unless Join is set (then the sync host on
	// a free port); for a hub the sync host on port 7402. "off" disables
	// gossip.
	GossipAddr string
	// GossipProfile is "lan" (default) or "local" (fast timings for
	// loopback tests).
	GossipProfile string
	// Hubs are hub sync addresses this node dials.
	Hubs []string
	// Join are gossip addresses of members to join.
	Join []string
	// Policies maps a table to its policy (package policy). A hub
	// arbitrates client-wins and server-wins tables, and logs the values
	// lww overrides; manual tables show conflicts.
	Policies map[string]string
	// NoArbiter stops a hub from arbitrating: in a hub cluster exactly one
	// hub arbitrates, the others set this.
	NoArbiter bool
	// ClusterID names the cluster (default "replicad"); peers of another
	// cluster are refused and a store of another cluster is not opened.
	ClusterID string
	// LogLevel is one of LogLevels (default info).
	LogLevel string
	// LogJSON writes logs as JSON lines instead of text.
	LogJSON bool
	// MaxClockOffset bounds how far ahead of local time a remote stamp may
	// be before its write is parked (default hlc.DefaultMaxOffset).
	MaxClockOffset time.Duration
	// ClockOffset skews this node's physical clock (testing only).
	ClockOffset time.Duration
	// PullInterval is how often every partner is synced (default 60s).
	PullInterval time.Duration
	// MaxSessions bounds concurrent sync sessions, in and out; 0 means
	// the role's default (DefaultHubSessions on a hub, whose fleet syncs
	// with it, DefaultDeviceSessions on a device). Sessions beyond it wait
	// up to 2 s for a slot, then are refused with a retry delay.
	MaxSessions int
	// MaxWatchers bounds the watch connections this node serves (devices
	// that dial it keep one open to hear of new writes at once; they hold
	// no session slot); 0 means the role's default (DefaultHubWatchers on
	// a hub, at most the sync listener's connection bound less the
	// session slots and 16; a device serves none).
	MaxWatchers int
	// MaxLiveQueries bounds the live queries and views (watch=true: event
	// streams and long polls) the API serves at once (0:
	// DefaultMaxLiveQueries); more are answered 503.
	MaxLiveQueries int
	// MaxBodyBytes limits an API request body (default 1 MiB).
	MaxBodyBytes int64
	// Security: the API token, TLS and gossip encryption (security.go).
	Security SecurityConfig
	// AtRest is where the key encrypting the store's values at rest comes
	// from (internal/credentials/atrest.go): at most one source; none leaves them plain.
	AtRest AtRestConfig
	// Tables declares tables: key fields for duplicate detection
	// (online_config.go).
	Tables map[string]TableConfig
	// Workflows are the hooks a hub runs on the changes it accepts
	// (online_config.go).
	Workflows []WorkflowConfig
	// Indexes and Views, on a hub, are the secondary indexes (table
	// blocks' index blocks, --index) and the views (view blocks) it
	// declares to every replica (decls.go).
	Indexes []IndexConfig
	Views   []ViewConfig
	// Profiles, on a hub, is the offline profiles file (package profile):
	// which records each device holds; reloaded when it changes.
	Profiles string
	// HubAPI is the hub's HTTP API (HOST:PORT or a URL) that online reads
	// (?online=true) are forwarded to (onlinereads.go).
	HubAPI string
	// HubAPITokenFile holds the bearer token the hub's API requires, if
	// any (the hub's <data-dir>/api-token).
	HubAPITokenFile string
	// DebugAPI registers the testing-only debug endpoints (ParseArgs: the
	// environment variable DebugAPIEnv set to 1; no flag or file key).
	DebugAPI bool
	// Pprof registers Go's profiling endpoints, /debug/pprof/ (ParseArgs:
	// the environment variable PprofEnv set to 1; no flag or file key).
	Pprof bool
}

// Environment variables ParseArgs reads into Config.
const (
	// DebugAPIEnv enables the debug endpoints of the fault-testing
	// harness (FOR TESTING ONLY).
	DebugAPIEnv = "REPLICAD_TESTING_DEBUG_API"
	// PprofEnv enables Go's profiling endpoints on the API listener.
	PprofEnv = "REPLICAD_PPROF"
)

// fileConfig is the HCL file's schema: a nil field was not set.
type fileConfig struct {
	DataDir        *string            `hcl:"data_dir,optional"`
	Role           *string            `hcl:"role,optional"`
	APIAddr        *string            `hcl:"api_addr,optional"`
	SyncAddr       *string            `hcl:"sync_addr,optional"`
	GossipAddr     *string            `hcl:"gossip_addr,optional"`
	GossipProfile  *string            `hcl:"gossip_profile,optional"`
	Hubs           *[]string          `hcl:"hub,optional"`
	Join           *[]string          `hcl:"join,optional"`
	Policies       *map[string]string `hcl:"policy,optional"`
	ClusterID      *string            `hcl:"cluster_id,optional"`
	LogLevel       *string            `hcl:"log_level,optional"`
	LogJSON        *bool              `hcl:"log_json,optional"`
	NoArbiter      *bool              `hcl:"no_arbiter,optional"`
	MaxClockOffset *string            `hcl:"max_clock_offset,optional"`
	ClockOffset    *string            `hcl:"clock_offset,optional"`
	PullInterval   *string            `hcl:"pull_interval,optional"`
	MaxSessions    *int               `hcl:"max_sessions,optional"`
	MaxWatchers    *int               `hcl:"max_watchers,optional"`
	MaxLiveQueries *int               `hcl:"max_live_queries,optional"`
	MaxBodyBytes   *int64             `hcl:"max_body_bytes,optional"`
	Rest           hcl.Body           `hcl:",remain"` // the security keys (securityFile)
	Tables         []tableBlock       `hcl:"table,block"`
	Workflows      []workflowBlock    `hcl:"workflow,block"`
	Views          []viewBlock        `hcl:"view,block"`
	HubAPI         *string            `hcl:"hub_api,optional"`
	Profiles       *string            `hcl:"profiles,optional"`
	HubAPIToken    *string            `hcl:"hub_api_token_file,optional"`
	// At-rest encryption key sources (internal/credentials/atrest.go).
	EncryptionKeyFile    *string `hcl:"encryption_key_file,optional"`
	EncryptionKeyEnv     *string `hcl:"encryption_key_env,optional"`
	EncryptionKeyCommand *string `hcl:"encryption_key_command,optional"`
}

// Sessions is the bound on concurrent sync sessions: MaxSessions, or the
// role's default.
func (c *Config) Sessions() int {
	switch {
	case c.MaxSessions > 0:
		return c.MaxSessions
	case c.Role == "hub":
		return DefaultHubSessions
	}
	return DefaultDeviceSessions
}

// Watchers is the bound on watch connections served: MaxWatchers, or
// the role's default.
func (c *Config) Watchers() int {
	switch {
	case c.MaxWatchers > 0:
		return c.MaxWatchers
	case c.Role == "hub":
		return DefaultHubWatchers
	}
	return 0
}

// DefaultConfig returns the configuration of `replicad agent` without
// flags or file.
func DefaultConfig() Config {
	return Config{
		DataDir:        DefaultDataDir,
		Role:           DefaultRole,
		APIAddr:        DefaultAPIAddr,
		SyncAddr:       DefaultSyncAddr,
		GossipProfile:  "lan",
		ClusterID:      DefaultClusterID,
		LogLevel:       DefaultLogLevel,
		MaxClockOffset: hlc.DefaultMaxOffset,
		PullInterval:   DefaultPullInterval,
		MaxBodyBytes:   DefaultMaxBodyBytes,
		Policies:       map[string]string{},
		Security:       SecurityConfig{APIAuth: APIAuthAuto},
	}
}

// LoadFile reads an HCL config file over c. Unknown keys and bad values
// are errors naming the file position.
func (c *Config) LoadFile(path string) error { return c.loadFile(path, nil, nil) }

// loadFile is LoadFile with flags applied (flags, nil: none) after the
// file and before the validation; an error of a key in flagged (set by
// a flag) names the flag, not the file's line.
func (c *Config) loadFile(path string, flags func(*Config) error, flagged map[string]bool) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return diagErr(diags)
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return diagErr(diags)
	}
	attrs := map[string]*hclsyntax.Attribute{}
	if b, ok := f.Body.(*hclsyntax.Body); ok {
		attrs = b.Attributes
	}
	set := func(key string) bool { return attrs[key] != nil }
	pos := func(key string) string {
		if a := attrs[key]; a != nil {
			return posOf(a.SrcRange)
		}
		return path
	}
	str := func(v *string, dst *string) {
		if v != nil {
			*dst = *v
		}
	}
	str(fc.DataDir, &c.DataDir)
	str(fc.Role, &c.Role)
	str(fc.APIAddr, &c.APIAddr)
	str(fc.SyncAddr, &c.SyncAddr)
	str(fc.GossipAddr, &c.GossipAddr)
	str(fc.GossipProfile, &c.GossipProfile)
	str(fc.ClusterID, &c.ClusterID)
	str(fc.LogLevel, &c.LogLevel)
	str(fc.HubAPI, &c.HubAPI)
	str(fc.Profiles, &c.Profiles)
	str(fc.HubAPIToken, &c.HubAPITokenFile)
	str(fc.EncryptionKeyFile, &c.AtRest.KeyFile)
	str(fc.EncryptionKeyEnv, &c.AtRest.KeyEnv)
	str(fc.EncryptionKeyCommand, &c.AtRest.KeyCommand)
	if fc.LogJSON != nil {
		c.LogJSON = *fc.LogJSON
	}
	if fc.NoArbiter != nil {
		c.NoArbiter = *fc.NoArbiter
	}
	if fc.MaxSessions != nil {
		c.MaxSessions = *fc.MaxSessions
	}
	if fc.MaxWatchers != nil {
		c.MaxWatchers = *fc.MaxWatchers
	}
	if fc.MaxLiveQueries != nil {
		c.MaxLiveQueries = *fc.MaxLiveQueries
	}
	if fc.MaxBodyBytes != nil {
		c.MaxBodyBytes = *fc.MaxBodyBytes
	}
	if fc.Hubs != nil {
		c.Hubs = *fc.Hubs
	}
	if fc.Join != nil {
		c.Join = *fc.Join
	}
	if fc.Policies != nil {
		c.Policies = *fc.Policies
	}
	if err := applyOnlineFile(fc.Tables, fc.Workflows, c); err != nil {
		return err
	}
	if err := applyDeclsFile(src, fc.Tables, fc.Views, c); err != nil {
		return err
	}
	if err := loadSecurityFile(fc.Rest, &c.Security); err != nil {
		return err
	}
	for _, d := range []struct {
		key string
		s   *string
		dst *time.Duration
	}{
		{"max_clock_offset", fc.MaxClockOffset, &c.MaxClockOffset},
		{"clock_offset", fc.ClockOffset, &c.ClockOffset},
		{"pull_interval", fc.PullInterval, &c.PullInterval},
	} {
		if d.s == nil {
			continue
		}
		v, err := time.ParseDuration(*d.s)
		if err != nil {
			return fmt.Errorf("%s: %s: %q is not a duration (e.g. \"30s\", \"2m\")", pos(d.key), d.key, *d.s)
		}
		*d.dst = v
	}
	if flags != nil {
		if err := flags(c); err != nil {
			return err
		}
	}
	if err := c.Validate(); err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			if set(ke.key) && !flagged[ke.key] {
				return fmt.Errorf("%s: %s", pos(ke.key), ke.msg)
			}
			if flags != nil { // as ParseArgs names a key: its flag
				return errors.New("--" + strings.ReplaceAll(ke.key, "_", "-") + ke.msg[len(ke.key):])
			}
		}
		return err
	}
	return nil
}

func diagErr(diags hcl.Diagnostics) error {
	var first *hcl.Diagnostic
	more := 0
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if first == nil {
			first = d
		} else {
			more++
		}
	}
	if first == nil {
		return errors.New("config: " + diags.Error())
	}
	// One short line: the first error only (an unclosed quote makes HCL
	// report every following line too), its summary and the first
	// sentence of its detail.
	m := first.Summary
	if d := firstSentence(first.Detail); d != "" {
		m += ": " + d
	}
	if first.Subject != nil {
		m = posOf(*first.Subject) + ": " + m
	}
	if more > 0 {
		m += fmt.Sprintf(" (and %d more errors after it)", more)
	}
	return errors.New("config: " + m)
}

// posOf is a position in a config file as FILE:LINE:COLUMN.
func posOf(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// firstSentence is s up to its first full stop, at most 160 bytes.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if len(s) > 160 {
		s = strings.ToValidUTF8(s[:157], "") + "..."
	}
	return s
}

// keyError is a validation error of one config key (the HCL name).
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.msg }

func keyErr(key, format string, args ...any) error {
	return &keyError{key: key, msg: key + ": " + fmt.Sprintf(format, args...)}
}

func checkHostPort(key, v string, allowEmpty bool) error {
	if v == "" && allowEmpty {
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil {
		return keyErr(key, "%q is not HOST:PORT", v)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return keyErr(key, "%q: bad port", v)
	}
	return nil
}

// Validate checks every field; errors name the config key.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return keyErr("data_dir", "must not be empty")
	}
	if c.Role != "hub" && c.Role != "device" {
		return keyErr("role", "%q: want hub or device", c.Role)
	}
	if c.Profiles != "" && c.Role != "hub" {
		return keyErr("profiles", "only a hub assigns offline profiles (role is %q)", c.Role)
	}
	if err := checkHostPort("api_addr", c.APIAddr, false); err != nil {
		return err
	}
	if err := checkHostPort("sync_addr", c.SyncAddr, false); err != nil {
		return err
	}
	if c.GossipAddr != "off" {
		if err := checkHostPort("gossip_addr", c.GossipAddr, true); err != nil {
			return err
		}
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "local" {
		return keyErr("gossip_profile", "%q: want lan or local", c.GossipProfile)
	}
	for _, h := range c.Hubs {
		if err := checkHostPort("hub", h, false); err != nil {
			return err
		}
	}
	for _, j := range c.Join {
		if err := checkHostPort("join", j, false); err != nil {
			return err
		}
	}
	for t, p := range c.Policies {
		if !store.ValidTable(t) {
			return keyErr("policy", "table %q: 1-64 characters from [A-Za-z0-9_.-]", t)
		}
		if strings.HasPrefix(t, "_replicad_") { // a system table
			return keyErr("policy", "table %s is a system table: replicad decides how it merges", t)
		}
		if !contains(Policies, p) {
			return keyErr("policy", "table %s: policy %q: want one of %s", t, p, strings.Join(Policies, ", "))
		}
	}
	if c.ClusterID == "" || len(c.ClusterID) > 64 {
		return keyErr("cluster_id", "want 1-64 bytes")
	}
	if !contains(LogLevels, strings.ToLower(c.LogLevel)) {
		return keyErr("log_level", "%q: want one of %s", c.LogLevel, strings.Join(LogLevels, ", "))
	}
	if c.MaxClockOffset <= 0 {
		return keyErr("max_clock_offset", "must be positive")
	}
	if c.PullInterval <= 0 {
		return keyErr("pull_interval", "must be positive")
	}
	if c.MaxSessions < 0 || c.MaxSessions > 4096 {
		return keyErr("max_sessions", "%d: want 0 (the role's default) to 4096", c.MaxSessions)
	}
	if c.MaxWatchers < 0 || c.MaxWatchers > 65536 {
		return keyErr("max_watchers", "%d: want 0 (the role's default) to 65536", c.MaxWatchers)
	}
	if c.MaxLiveQueries < 0 || c.MaxLiveQueries > 65536 {
		return keyErr("max_live_queries", "%d: want 0 (%d) to 65536", c.MaxLiveQueries, DefaultMaxLiveQueries)
	}
	if err := c.validateOnline(); err != nil {
		return err
	}
	if err := c.validateDecls(); err != nil {
		return err
	}
	if c.MaxBodyBytes <= 0 {
		return keyErr("max_body_bytes", "must be positive")
	}
	if err := c.Security.validate(); err != nil {
		return err
	}
	if err := CheckInsecure(c); err != nil {
		return err
	}
	if err := c.AtRest.validate(); err != nil {
		return err
	}
	if err := checkHubAPI(c.HubAPI); err != nil {
		return err
	}
	return nil
}

// GossipBind returns the address gossip binds to, or "" when gossip is off.
func (c *Config) GossipBind() string {
	switch {
	case c.GossipAddr == "off":
		return ""
	case c.GossipAddr != "":
		return c.GossipAddr
	}
	host, _, _ := net.SplitHostPort(c.SyncAddr)
	switch {
	case c.Role == "hub":
		return net.JoinHostPort(host, strconv.Itoa(DefaultHubGossip))
	case len(c.Join) > 0:
		return net.JoinHostPort(host, "0")
	}
	return ""
}

func (c *Config) HclogLevel() hclog.Level {
	return hclog.LevelFromString(strings.ToLower(c.LogLevel))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
