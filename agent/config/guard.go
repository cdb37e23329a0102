package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/spf13/pflag"
)

// Defaults of GuardConfig.
const (
	DefaultAPIReadTimeout  = 60 * time.Second
	DefaultAPIWriteTimeout = 60 * time.Second
	DefaultAPIIdleTimeout  = 60 * time.Second
	// DefaultMaxParked bounds the writes parked per origin.
	DefaultMaxParked = 1000
	// maxConnsLimit is the largest connection bound accepted.
	maxConnsLimit = 1 << 20
)

// GuardConfig bounds the API's and sync listener's connections and says
// which Host names and cross-site origins the API answers (part of
// SecurityConfig; keys api_host, api_cors_origin, api_max_conns,
// sync_max_conns, api_read_timeout, api_write_timeout, api_idle_timeout,
// max_parked).
type GuardConfig struct {
	// APIHosts are further Host names the API answers, besides localhost,
	// loopback addresses and the address it is bound to (every local
	// address when bound to 0.0.0.0 or ::). Needed for a name (DNS) under
	// which clients reach an API off loopback.
	APIHosts []string
	// CORSOrigins are web origins (scheme://host[:port]) allowed to make
	// cross-site requests, state changes included.
	CORSOrigins []string
	// APIMaxConns and SyncMaxConns bound the connections open at once on
	// the API and the sync listener; 0: a quarter of the process's
	// descriptor limit, 16 to 1024 (for the sync listener at least the
	// session bound plus 16). Connections beyond are closed at once.
	APIMaxConns, SyncMaxConns int
	// APIReadTimeout bounds reading a request (headers and body),
	// APIWriteTimeout writing its answer (the change feed's long poll
	// gets its poll timeout more; its event stream and POST /v1/sync have
	// no total bound, the stream's every write has this one),
	// APIIdleTimeout a keep-alive connection waiting for its next request.
	APIReadTimeout, APIWriteTimeout, APIIdleTimeout time.Duration
	// MaxParked bounds the remote writes parked per origin (far-future
	// stamps, parked.go); further ones are refused, and the refusal is a
	// sync error for their origin (default DefaultMaxParked).
	MaxParked int
}

func defaultGuard() GuardConfig {
	return GuardConfig{APIReadTimeout: DefaultAPIReadTimeout, APIWriteTimeout: DefaultAPIWriteTimeout,
		APIIdleTimeout: DefaultAPIIdleTimeout, MaxParked: DefaultMaxParked}
}

func (g *GuardConfig) WithDefaults() GuardConfig {
	d, out := defaultGuard(), *g
	if out.APIReadTimeout == 0 {
		out.APIReadTimeout = d.APIReadTimeout
	}
	if out.APIWriteTimeout == 0 {
		out.APIWriteTimeout = d.APIWriteTimeout
	}
	if out.APIIdleTimeout == 0 {
		out.APIIdleTimeout = d.APIIdleTimeout
	}
	if out.MaxParked == 0 {
		out.MaxParked = d.MaxParked
	}
	return out
}

func (g *GuardConfig) validate() error {
	for _, h := range g.APIHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") && net.ParseIP(strings.Trim(h, "[]")) == nil {
			return keyErr("api_host", "%q: want a host name or address, without port", h)
		}
	}
	for _, o := range g.CORSOrigins {
		if _, err := ParseOrigin(o); err != nil {
			return keyErr("api_cors_origin", "%q: %v", o, err)
		}
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"api_max_conns", g.APIMaxConns}, {"sync_max_conns", g.SyncMaxConns}} {
		if c.v < 0 || c.v > maxConnsLimit {
			return keyErr(c.key, "%d: want 0 (a quarter of the descriptor limit) to %d", c.v, maxConnsLimit)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"api_read_timeout", g.APIReadTimeout}, {"api_write_timeout", g.APIWriteTimeout}, {"api_idle_timeout", g.APIIdleTimeout}} {
		if d.v < 0 {
			return keyErr(d.key, "%s: must not be negative", d.v)
		}
	}
	if g.MaxParked < 0 {
		return keyErr("max_parked", "%d: must not be negative", g.MaxParked)
	}
	return nil
}

// ParseOrigin normalizes a web origin: scheme://host[:port], nothing else.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("want an origin such as https://app.example.com or http://127.0.0.1:8080")
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// guardFile holds the HCL keys of GuardConfig (part of securityFile).
type guardFile struct {
	APIHosts        *[]string `hcl:"api_host,optional"`
	CORSOrigins     *[]string `hcl:"api_cors_origin,optional"`
	APIMaxConns     *int      `hcl:"api_max_conns,optional"`
	SyncMaxConns    *int      `hcl:"sync_max_conns,optional"`
	APIReadTimeout  *string   `hcl:"api_read_timeout,optional"`
	APIWriteTimeout *string   `hcl:"api_write_timeout,optional"`
	APIIdleTimeout  *string   `hcl:"api_idle_timeout,optional"`
	MaxParked       *int      `hcl:"max_parked,optional"`
}

// loadGuardFile decodes the guard keys (what securityFile leaves) over g;
// unknown keys are errors.
func loadGuardFile(body hcl.Body, g *GuardConfig) error {
	var f guardFile
	if diags := gohcl.DecodeBody(body, nil, &f); diags.HasErrors() {
		return diagErr(diags)
	}
	if f.APIHosts != nil {
		g.APIHosts = *f.APIHosts
	}
	if f.CORSOrigins != nil {
		g.CORSOrigins = *f.CORSOrigins
	}
	if f.APIMaxConns != nil {
		g.APIMaxConns = *f.APIMaxConns
	}
	if f.SyncMaxConns != nil {
		g.SyncMaxConns = *f.SyncMaxConns
	}
	if f.MaxParked != nil {
		g.MaxParked = *f.MaxParked
	}
	for _, d := range []struct {
		key string
		s   *string
		dst *time.Duration
	}{{"api_read_timeout", f.APIReadTimeout, &g.APIReadTimeout}, {"api_write_timeout", f.APIWriteTimeout, &g.APIWriteTimeout}, {"api_idle_timeout", f.APIIdleTimeout, &g.APIIdleTimeout}} {
		if d.s == nil {
			continue
		}
		v, err := time.ParseDuration(*d.s)
		if err != nil {
			return keyErr(d.key, "%q is not a duration (e.g. \"30s\", \"2m\")", *d.s)
		}
		*d.dst = v
	}
	return nil
}

func addGuardFlags(fs *pflag.FlagSet, g *GuardConfig) {
	d := defaultGuard()
	fs.StringArrayVar(&g.APIHosts, "api-host", nil, "a further `NAME` in the Host header the API answers (repeatable; localhost, loopback and the API's own address always are); needed for a name clients use to reach an API off loopback")
	fs.StringArrayVar(&g.CORSOrigins, "api-cors-origin", nil, "a web `ORIGIN` (scheme://host[:port]) allowed to call the API cross-site, state changes included (repeatable)")
	fs.IntVar(&g.APIMaxConns, "api-max-conns", 0, "API connections open at once; more are closed at once (0: a quarter of the descriptor limit, 16 to 1024)")
	fs.IntVar(&g.SyncMaxConns, "sync-max-conns", 0, "sync connections open at once; more are closed at once (0: a quarter of the descriptor limit, 16 to 1024, at least --max-sessions + 16)")
	fs.DurationVar(&g.APIReadTimeout, "api-read-timeout", d.APIReadTimeout, "time to read an API request, headers and body")
	fs.DurationVar(&g.APIWriteTimeout, "api-write-timeout", d.APIWriteTimeout, "time to write an API answer (long polls get their timeout more; the event stream, each write)")
	fs.DurationVar(&g.APIIdleTimeout, "api-idle-timeout", d.APIIdleTimeout, "time a keep-alive API connection may wait for its next request")
	fs.IntVar(&g.MaxParked, "max-parked", d.MaxParked, "remote writes parked (stamped beyond --max-clock-offset) per origin; further ones are refused with a sync error")
}

// applyGuardFlag copies a guard flag that was set; it reports whether name
// is one.
func applyGuardFlag(name string, dst, src *GuardConfig) bool {
	switch name {
	case "api-host":
		dst.APIHosts = src.APIHosts
	case "api-cors-origin":
		dst.CORSOrigins = src.CORSOrigins
	case "api-max-conns":
		dst.APIMaxConns = src.APIMaxConns
	case "sync-max-conns":
		dst.SyncMaxConns = src.SyncMaxConns
	case "api-read-timeout":
		dst.APIReadTimeout = src.APIReadTimeout
	case "api-write-timeout":
		dst.APIWriteTimeout = src.APIWriteTimeout
	case "api-idle-timeout":
		dst.APIIdleTimeout = src.APIIdleTimeout
	case "max-parked":
		dst.MaxParked = src.MaxParked
	default:
		return false
	}
	return true
}
