package httpapi

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/internal/netguard"
	"github.com/replicad/replicad/secure"
	"golang.org/x/sys/unix"
)

// HTTP and listener hardening: what the API answers (Host names, cross-site
// state changes, bodies over the limit before they are read), how long a
// connection may stay (read, write and idle timeouts; per-route deadlines
// for the long-poll and streaming routes) and how many may be open (the
// API's and the sync listener's bounds; internal/netguard keeps both accept
// loops alive through descriptor exhaustion).

// Guard is the API's HTTP hardening (see above).
type Guard struct {
	cfg     config.GuardConfig // with its defaults
	maxBody int64
	log     hclog.Logger
	onError func(code int, err error)
	refused netguard.Throttle // refused requests' WARN lines
}

// NewGuard returns the guard of an API configured by cfg, whose bodies
// are limited to maxBody bytes; onError (nil: nothing) is told of the
// errors it answers.
func NewGuard(cfg config.GuardConfig, maxBody int64, log hclog.Logger, onError func(code int, err error)) *Guard {
	return &Guard{cfg: cfg.WithDefaults(), maxBody: maxBody, log: log, onError: onError}
}

// RefusedPending is the number of refused requests not logged yet (one
// WARN line per netguard.LogInterval counts them).
func (g *Guard) RefusedPending() uint64 { return g.refused.Pending() }

// ConnBound returns a connection bound: n, or a quarter of the process's
// descriptor limit, 16 to 1024.
func ConnBound(n int) int {
	if n > 0 {
		return n
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 1024
	}
	return int(min(max(rl.Cur/4, 16), 1024))
}

// Server returns the API's server for the API bound at addr: the Host
// check in front of h, and the timeouts.
func (gd *Guard) Server(h http.Handler, addr string) *http.Server {
	g := gd.cfg
	return &http.Server{
		Handler:           gd.hostGuard(h, addr),
		ReadHeaderTimeout: min(10*time.Second, g.APIReadTimeout),
		ReadTimeout:       g.APIReadTimeout,
		WriteTimeout:      g.APIWriteTimeout,
		IdleTimeout:       g.APIIdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// refuse answers a request the guard refuses, closes its connection
// after the answer and logs it (throttled).
func (gd *Guard) refuse(w http.ResponseWriter, r *http.Request, code int, reason string) {
	gd.LogRefused(r, reason)
	w.Header().Set("Connection", "close")
	WriteError(w, Errorf(code, "%s", reason), gd.onError)
}

// Bearer puts the bearer check in front of h (token "": none): a request
// without the token is refused, logged (LogRefused) and its connection
// closed after the answer.
func (gd *Guard) Bearer(h http.Handler, token string) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure.RequireBearer(h, token, func(r *http.Request, reason string) {
			w.Header().Set("Connection", "close") // nothing more on this connection
			gd.LogRefused(r, reason)
		}).ServeHTTP(w, r)
	})
}

// LogRefused logs a refused API request at WARN: at most one line per
// netguard.LogInterval, with the number of refusals not logged since.
func (gd *Guard) LogRefused(r *http.Request, reason string) {
	if ok, n := gd.refused.Allow(); ok {
		gd.log.Warn("api request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", reason, "suppressed", n)
	}
}

// hostGuard answers only requests whose Host names this API: a foreign
// name is what a DNS-rebinding page sends.
func (gd *Guard) hostGuard(h http.Handler, addr string) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, n := range gd.cfg.APIHosts {
		hosts[normHost(n)] = true
	}
	var bound net.IP
	anyAddr := false
	if host, _, err := net.SplitHostPort(addr); err == nil {
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
			gd.refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q does not name this API: it answers localhost, loopback addresses, its own address and the names given with --api-host", r.Host))
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

// Sites sits behind authentication: it refuses cross-site state
// changes and state changes whose body is not JSON, answers 413 to a body
// announced over the limit before reading it, answers the preflights of
// the allowed cross-site origins, and sets the long routes' deadlines.
func (gd *Guard) Sites(h http.Handler) http.Handler {
	g := gd.cfg
	cors := map[string]bool{}
	for _, o := range g.CORSOrigins {
		if n, err := config.ParseOrigin(o); err == nil {
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
				gd.refuse(w, r, http.StatusForbidden, reason)
				return
			}
			if reason := notJSON(r); reason != "" {
				gd.refuse(w, r, http.StatusUnsupportedMediaType, reason)
				return
			}
		}
		if r.ContentLength > gd.maxBody {
			gd.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes over the limit of %d bytes", r.ContentLength, gd.maxBody))
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
	feed := r.Method == http.MethodGet && (r.URL.Path == "/v1/changes" || IsWatch(r))
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
		rc.SetWriteDeadline(time.Now().Add(MaxPollTimeout + writeTimeout))
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
