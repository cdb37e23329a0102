package agent

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// HTTP and listener hardening: what the API answers (Host names, cross-site
// state changes, bodies over the limit before they are read), how long a
// connection may stay (read, write and idle timeouts; per-route deadlines
// for the long-poll and streaming routes) and how many may be open (the
// API's and the sync listener's bounds; internal/netguard keeps both accept
// loops alive through descriptor exhaustion).

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

func (g *GuardConfig) withDefaults() GuardConfig {
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
		if _, err := parseOrigin(o); err != nil {
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

// parseOrigin normalizes a web origin: scheme://host[:port], nothing else.
func parseOrigin(s string) (string, error) {
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

// connBound returns a connection bound: n, or a quarter of the process's
// descriptor limit, 16 to 1024.
func connBound(n int) int {
	if n > 0 {
		return n
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 1024
	}
	return int(min(max(rl.Cur/4, 16), 1024))
}

// guardListener bounds a listener's connections and keeps its accept loop
// alive through temporary errors (internal/netguard).
func (a *Agent) guardListener(l net.Listener, name string, max int) net.Listener {
	return netguard.Wrap(l, name, connBound(max), a.log.Named(name))
}

// httpServer returns the API's server: the guard in front of h, and the
// timeouts.
func (a *Agent) httpServer(h http.Handler) *http.Server {
	g := a.cfg.Security.Guard.withDefaults()
	return &http.Server{
		Handler:           a.hostGuard(h),
		ReadHeaderTimeout: min(10*time.Second, g.APIReadTimeout),
		ReadTimeout:       g.APIReadTimeout,
		WriteTimeout:      g.APIWriteTimeout,
		IdleTimeout:       g.APIIdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// refuse answers a request the guard refuses, closes its connection
// after the answer and logs it (throttled).
func (a *Agent) refuse(w http.ResponseWriter, r *http.Request, code int, reason string) {
	a.logRefused(r, reason)
	w.Header().Set("Connection", "close")
	a.writeError(w, errf(code, "%s", reason))
}

// logRefused logs a refused API request at WARN: at most one line per
// netguard.LogInterval, with the number of refusals not logged since.
func (a *Agent) logRefused(r *http.Request, reason string) {
	if ok, n := a.refusedLog.Allow(); ok {
		a.log.Warn("api request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", reason, "suppressed", n)
	}
}

// hostGuard answers only requests whose Host names this API: a foreign
// name is what a DNS-rebinding page sends.
func (a *Agent) hostGuard(h http.Handler) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, n := range a.cfg.Security.Guard.APIHosts {
		hosts[normHost(n)] = true
	}
	var bound net.IP
	anyAddr := false
	if host, _, err := net.SplitHostPort(a.apiLn.Addr().String()); err == nil {
		bound = net.ParseIP(host)
		anyAddr = bound == nil || bound.IsUnspecified()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := normHost(r.Host)
		ok := hosts[name]
		if ip := net.ParseIP(name); !ok && ip != nil {
			ok = ip.IsLoopback() || ip.Equal(bound) || (anyAddr && localIP(ip))
		}
		if !ok {
			a.refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q does not name this API: it answers localhost, loopback addresses, its own address and the names given with --api-host", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// normHost returns the host of a Host header without port and brackets,
// lower case, without a trailing dot.
func normHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// localIP reports whether ip is one of this machine's addresses.
func localIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// siteGuard sits behind authentication: it refuses cross-site state
// changes and state changes whose body is not JSON, answers 413 to a body
// announced over the limit before reading it, answers the preflights of
// the allowed cross-site origins, and sets the long routes' deadlines.
func (a *Agent) siteGuard(h http.Handler) http.Handler {
	g := a.cfg.Security.Guard.withDefaults()
	cors := map[string]bool{}
	for _, o := range g.CORSOrigins {
		if n, err := parseOrigin(o); err == nil {
			cors[n] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := strings.ToLower(r.Header.Get("Origin"))
		allowed := origin != "" && cors[origin]
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Last-Event-ID")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if !safeMethod(r.Method) {
			if reason := crossSite(r, origin, allowed); reason != "" {
				a.refuse(w, r, http.StatusForbidden, reason)
				return
			}
			if reason := notJSON(r); reason != "" {
				a.refuse(w, r, http.StatusUnsupportedMediaType, reason)
				return
			}
		}
		if r.ContentLength > a.cfg.MaxBodyBytes {
			a.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes over the limit of %d bytes", r.ContentLength, a.cfg.MaxBodyBytes))
			return
		}
		h.ServeHTTP(longRoute(w, r, g.APIWriteTimeout), r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// crossSite returns why a state-changing request comes from another web
// origin, or "": browsers name the requesting page's origin (Origin) and
// how it relates to the target (Sec-Fetch-Site); clients that send
// neither (the CLI, the Go client, curl) are not browsers' pages.
func crossSite(r *http.Request, origin string, allowed bool) string {
	if allowed {
		return ""
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return fmt.Sprintf("cross-site request refused (Sec-Fetch-Site: %s, Origin: %s): state changes are taken from this API's own page and from non-browser clients; allow an origin with --api-cors-origin", s, r.Header.Get("Origin"))
	}
	if origin == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin != scheme+"://"+strings.ToLower(r.Host) {
		return fmt.Sprintf("cross-site request refused (Origin: %s): state changes are taken from this API's own page and from non-browser clients; allow an origin with --api-cors-origin", r.Header.Get("Origin"))
	}
	return ""
}

// notJSON returns why a state-changing request's body is refused: it must
// be application/json (a form or text/plain body is what a page on
// another origin can send without asking); a request without body may
// name no other type.
func notJSON(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	hasBody := r.ContentLength != 0
	if ct == "" && !hasBody {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return ""
	}
	if ct == "" {
		return "a request body needs Content-Type: application/json"
	}
	return fmt.Sprintf("Content-Type %q refused: state-changing requests take application/json", ct)
}

// longRoute sets the deadlines of the routes that wait: the change feed's
// long poll may write until its poll timeout plus the write timeout, its
// event stream has no total bound (each write must finish within the
// write timeout), and POST /v1/sync without body none (the sync's sessions
// have their own timeouts), nor Go's profiles (REPLICAD_PPROF=1). Their read deadline goes: the request has no
// body to read, and the server watches the connection for the client
// going away.
func longRoute(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) http.ResponseWriter {
	feed := r.Method == http.MethodGet && r.URL.Path == "/v1/changes"
	sync := r.Method == http.MethodPost && r.URL.Path == "/v1/sync" && r.ContentLength == 0 ||
		r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/debug/pprof/") // profiles and traces take their seconds
	if !feed && !sync {
		return w
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	switch {
	case sync:
		rc.SetWriteDeadline(time.Time{})
	case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		rc.SetWriteDeadline(time.Time{})
		return &streamWriter{ResponseWriter: w, rc: rc, d: writeTimeout}
	default:
		rc.SetWriteDeadline(time.Now().Add(maxPollTimeout + writeTimeout))
	}
	return w
}

// streamWriter gives each write of an event stream its own deadline: a
// client that stops reading is cut after the write timeout.
type streamWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (s *streamWriter) Write(b []byte) (int, error) {
	s.rc.SetWriteDeadline(time.Now().Add(s.d))
	return s.ResponseWriter.Write(b)
}

func (s *streamWriter) Flush() {
	s.rc.SetWriteDeadline(time.Now().Add(s.d))
	s.rc.Flush()
}

func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
