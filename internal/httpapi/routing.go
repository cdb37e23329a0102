package httpapi

import (
	"net/http"
)

// routed serves r with mux when one of mux's patterns matches it. When
// none does but the path is one of mux's under other methods, it answers
// 405 with Allow (the methods the path takes) and a JSON error; any other
// request goes to next. Without it a catch-all pattern would answer every
// wrong method with a 404.
func (rt *Router) routed(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern: h is the mux's own 404 or 405 answer; run it on a
		// probe to learn which, and the Allow header it would send.
		p := &probeWriter{header: http.Header{}}
		h.ServeHTTP(p, r)
		if p.code != http.StatusMethodNotAllowed {
			next.ServeHTTP(w, r)
			return
		}
		allow := p.header.Get("Allow")
		w.Header().Set("Allow", allow)
		rt.WriteError(w, Errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s: it takes %s", r.Method, r.URL.Path, allow))
	})
}

// notFound answers every request with a JSON 404.
func (rt *Router) notFound() http.Handler {
	return rt.adapt(func(w http.ResponseWriter, r *http.Request) (any, error) {
		return nil, Errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// probeWriter records the status and headers a handler writes and drops
// its body.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header { return p.header }

func (p *probeWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
