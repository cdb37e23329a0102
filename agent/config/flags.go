package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/replicad/replicad/hlc"
	"github.com/spf13/pflag"
)

// ErrHelp is returned by ParseArgs when help was asked for (and printed).
var ErrHelp = pflag.ErrHelp

const usageHead = `Usage: replicad agent [flags]

Runs the replicad daemon. Out of the box it is a single device node with its
data in ./replicad-data and its HTTP API on 127.0.0.1:7400. Flags override
the HCL file given with --config (see examples/replicad.hcl, which documents
every key); the file overrides the defaults. Every flag has a file key of
the same name with dashes as underscores (--hub and --join: hub = [...],
join = [...]; --policy: policy = { table = "manual" }).

Gossip (hashicorp/memberlist) is off for a device unless --join or
--gossip-addr is given (with --join alone it binds the sync host on a free
port); a hub gossips on its sync host, port 7402, unless --gossip-addr says
otherwise. --gossip-addr off disables it.

Policies: --policy TABLE=POLICY (lww, client-wins, server-wins, manual) is
applied. A hub publishes its policies to every replica (system table
_replicad_policy); the arbitrating hub (every hub unless --no-arbiter)
decides client-wins and server-wins tables and logs what each policy
overrode or rejected as sync errors; manual tables list concurrent values
as conflicts; lww (the default) keeps the highest stamp. Set policies on
the hubs: a device takes them from the hub.

Flags:
`

// ParseArgs parses the arguments of `replicad agent` (without the
// subcommand): defaults, then the --config file, then the flags given.
// With -h/--help it prints the usage to out and returns ErrHelp.
func ParseArgs(args []string, out io.Writer) (Config, error) {
	def := DefaultConfig()
	fv := DefaultConfig()
	var configPath string
	var policies []string
	var keys []string
	var indexes []string
	fs := pflag.NewFlagSet("replicad agent", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	fs.StringVar(&configPath, "config", "", "HCL config `FILE` (flags override it)")
	fs.StringVar(&fv.DataDir, "data-dir", def.DataDir, "data `DIR`: the store and a lock file; a second agent on it is refused")
	fs.StringVar(&fv.Role, "role", def.Role, "node role: hub or device")
	fs.StringVar(&fv.APIAddr, "api-addr", def.APIAddr, "HTTP API `HOST:PORT` (/v1, /metrics, the status page at /)")
	fs.StringVar(&fv.SyncAddr, "sync-addr", def.SyncAddr, "`HOST:PORT` to accept sync sessions on")
	fs.StringVar(&fv.GossipAddr, "gossip-addr", "", "gossip (memberlist) `HOST:PORT`, or off (default: see above)")
	fs.StringVar(&fv.GossipProfile, "gossip-profile", def.GossipProfile, "gossip timings: lan, or local for loopback tests")
	fs.StringArrayVar(&fv.Hubs, "hub", nil, "a hub's sync `ADDR` to dial (repeatable)")
	fs.StringArrayVar(&fv.Join, "join", nil, "a member's gossip `ADDR` to join (repeatable)")
	fs.StringArrayVar(&policies, "policy", nil, "`TABLE=POLICY` (repeatable; lww|client-wins|server-wins|manual; the arbitrating hub applies them)")
	fs.StringArrayVar(&keys, "keys", nil, "`TABLE=FIELD[,FIELD...]`: key fields; the arbitrating hub flags new records whose keys match a live record's as suspected duplicates (repeatable)")
	fs.StringArrayVar(&indexes, "index", nil, "on a hub: `TABLE=FIELD[,FIELD...]`: a secondary index, named by its fields joined by _, that every replica builds and queries use (repeatable)")
	fs.StringVar(&fv.ClusterID, "cluster-id", def.ClusterID, "cluster `ID`: peers and stores of another cluster are refused")
	fs.StringVar(&fv.LogLevel, "log-level", def.LogLevel, "log `LEVEL`: "+strings.Join(LogLevels, ", "))
	fs.BoolVar(&fv.LogJSON, "log-json", false, "log JSON lines instead of text")
	fs.BoolVar(&fv.NoArbiter, "no-arbiter", false, "on a hub: do not arbitrate client-wins and server-wins tables (in a hub cluster, every hub but one)")
	fs.DurationVar(&fv.MaxClockOffset, "max-clock-offset", hlc.DefaultMaxOffset, "park remote writes stamped further than this ahead of local time")
	fs.DurationVar(&fv.ClockOffset, "clock-offset", 0, "FOR TESTING: skew this node's physical clock by this much (e.g. 2m, -30s)")
	fs.DurationVar(&fv.PullInterval, "pull-interval", def.PullInterval, "sync with every partner this often")
	fs.IntVar(&fv.MaxSessions, "max-sessions", 0, fmt.Sprintf("concurrent sync sessions, in and out (0: %d on a hub, %d on a device); more wait up to 2 s for a slot, then are refused with a retry delay", DefaultHubSessions, DefaultDeviceSessions))
	fs.IntVar(&fv.MaxWatchers, "max-watchers", 0, fmt.Sprintf("watch connections served at once (0: %d on a hub, at most --sync-max-conns less --max-sessions and 16; none on a device); devices that dial this node keep one open to hear of new writes within moments; they hold no session slot", DefaultHubWatchers))
	fs.IntVar(&fv.MaxLiveQueries, "max-live-queries", 0, fmt.Sprintf("live queries and views (watch=true) the API serves at once (0: %d); more are answered 503", DefaultMaxLiveQueries))
	fs.Int64Var(&fv.MaxBodyBytes, "max-body-bytes", def.MaxBodyBytes, "largest API request body, in bytes")
	fs.StringVar(&fv.Profiles, "profiles", "", "on a hub: the offline profiles `FILE` (HCL; which records each device holds; reloaded when it changes)")
	fs.StringVar(&fv.HubAPI, "hub-api", "", "the hub's HTTP API `ADDR` (HOST:PORT or URL) for online reads (?online=true)")
	fs.StringVar(&fv.HubAPITokenFile, "hub-api-token-file", "", "`FILE` holding the bearer token of the hub's API, if it needs one")
	addSecurityFlags(fs, &fv.Security)
	fs.StringVar(&fv.AtRest.KeyFile, "encryption-key-file", "", "encrypt the store's values at rest (AES-256-GCM) with the key in `FILE`: 32 raw bytes or 64 hex characters, mode 0600; a plain store is migrated")
	fs.StringVar(&fv.AtRest.KeyEnv, "encryption-key-env", "", "encrypt the store at rest with the key in environment variable `VAR` (64 hex characters; removed from the agent's environment once read)")
	fs.StringVar(&fv.AtRest.KeyCommand, "encryption-key-command", "", "encrypt the store at rest with the key `CMD` prints (run with /bin/sh -c once at start; 30 s timeout)")
	fs.Usage = func() {
		fmt.Fprint(out, usageHead)
		fmt.Fprint(out, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see replicad agent --help)", fs.Arg(0))
	}
	// The flags override the file's settings; the file is validated with
	// them applied (a file's index declarations with --role hub), its
	// errors naming the file's line unless a flag set the key at fault.
	flagged := map[string]bool{}
	applyFlags := func(cfg *Config) error {
		fs.Visit(func(f *pflag.Flag) { flagged[strings.ReplaceAll(f.Name, "-", "_")] = true })
		return applyFlagValues(fs, &fv, cfg, policies, keys, indexes)
	}
	cfg := DefaultConfig()
	if configPath != "" {
		if err := cfg.loadFile(configPath, applyFlags, flagged); err != nil {
			return Config{}, err
		}
	} else if err := applyFlags(&cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return Config{}, errors.New("--" + strings.ReplaceAll(ke.key, "_", "-") + ke.msg[len(ke.key):])
		}
		return Config{}, err
	}
	cfg.DebugAPI = os.Getenv(DebugAPIEnv) == "1"
	cfg.Pprof = os.Getenv(PprofEnv) == "1"
	return cfg, nil
}

// applyFlagValues sets in cfg what the flags given (fs.Visit) hold (fv,
// and the repeatable ones' values).
func applyFlagValues(fs *pflag.FlagSet, fv *Config, cfg *Config, policies, keys, indexes []string) error {
	var perr error
	atRestFlags := false // an encryption key flag replaces the file's source
	atRest := func() *AtRestConfig {
		if !atRestFlags {
			cfg.AtRest, atRestFlags = AtRestConfig{}, true
		}
		return &cfg.AtRest
	}
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "data-dir":
			cfg.DataDir = fv.DataDir
		case "role":
			cfg.Role = fv.Role
		case "api-addr":
			cfg.APIAddr = fv.APIAddr
		case "sync-addr":
			cfg.SyncAddr = fv.SyncAddr
		case "gossip-addr":
			cfg.GossipAddr = fv.GossipAddr
		case "gossip-profile":
			cfg.GossipProfile = fv.GossipProfile
		case "hub":
			cfg.Hubs = fv.Hubs
		case "join":
			cfg.Join = fv.Join
		case "policy":
			cfg.Policies = map[string]string{}
			for _, p := range policies {
				t, pol, ok := strings.Cut(p, "=")
				if !ok {
					perr = fmt.Errorf("--policy %q: want TABLE=POLICY", p)
					return
				}
				cfg.Policies[t] = pol
			}
		case "keys":
			tcs, err := parseKeysFlag(keys)
			if err != nil {
				perr = err
				return
			}
			if cfg.Tables == nil {
				cfg.Tables = map[string]TableConfig{}
			}
			for t, tc := range tcs {
				cfg.Tables[t] = tc
			}
		case "index":
			ixs, err := parseIndexFlag(indexes)
			if err != nil {
				perr = err
				return
			}
			named := map[string]bool{} // a flag replaces the file's index of its name
			for _, x := range ixs {
				named[x.Name] = true
			}
			var keep []IndexConfig
			for _, x := range cfg.Indexes {
				if !named[x.Name] {
					keep = append(keep, x)
				}
			}
			cfg.Indexes = append(keep, ixs...)
		case "cluster-id":
			cfg.ClusterID = fv.ClusterID
		case "log-level":
			cfg.LogLevel = fv.LogLevel
		case "log-json":
			cfg.LogJSON = fv.LogJSON
		case "no-arbiter":
			cfg.NoArbiter = fv.NoArbiter
		case "max-clock-offset":
			cfg.MaxClockOffset = fv.MaxClockOffset
		case "clock-offset":
			cfg.ClockOffset = fv.ClockOffset
		case "pull-interval":
			cfg.PullInterval = fv.PullInterval
		case "max-sessions":
			cfg.MaxSessions = fv.MaxSessions
		case "max-watchers":
			cfg.MaxWatchers = fv.MaxWatchers
		case "max-live-queries":
			cfg.MaxLiveQueries = fv.MaxLiveQueries
		case "max-body-bytes":
			cfg.MaxBodyBytes = fv.MaxBodyBytes
		case "profiles":
			cfg.Profiles = fv.Profiles
		case "hub-api":
			cfg.HubAPI = fv.HubAPI
		case "hub-api-token-file":
			cfg.HubAPITokenFile = fv.HubAPITokenFile
		case "encryption-key-file":
			atRest().KeyFile = fv.AtRest.KeyFile
		case "encryption-key-env":
			atRest().KeyEnv = fv.AtRest.KeyEnv
		case "encryption-key-command":
			atRest().KeyCommand = fv.AtRest.KeyCommand
		default:
			applySecurityFlag(f.Name, &cfg.Security, &fv.Security)
		}
	})
	return perr
}
