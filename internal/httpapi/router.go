package httpapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/replicaslot"
	"github.com/replicad/replicad/store"
)

// Error is an error with an HTTP status, the extensions' own
// (extapi.Error).
type Error = extapi.Error

// Errorf returns an Error with status code.
func Errorf(code int, format string, args ...any) error { return extapi.Errorf(code, format, args...) }

// Errors of a replica not serving for a moment (503): the current
// replica's slot is empty (internal/replicaslot).
var (
	ErrResetting  = replicaslot.ErrResetting
	ErrRecovering = replicaslot.ErrRecovering
)

// Status returns the status and message err is answered with.
func Status(err error) (int, string) {
	code := http.StatusInternalServerError
	msg := err.Error()
	var ae *Error
	var mbe *http.MaxBytesError
	var se interface{ Status() int } // an extension's error with its status
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.As(err, &se):
		code = se.Status()
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrClosed), errors.Is(err, ErrResetting), errors.Is(err, ErrRecovering), errors.Is(err, store.ErrFailed):
		code = http.StatusServiceUnavailable
	}
	return code, msg
}

// HandlerFunc handles a request: a value is answered as JSON (200), an
// error as a JSON error; nil, nil means the handler wrote the answer.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// Router is the API's routes.
type Router struct {
	mux     *http.ServeMux
	onError func(code int, err error)
}

// NewRouter returns a router with no routes; onError (nil: nothing) is
// told of every error answered.
func NewRouter(onError func(code int, err error)) *Router {
	if onError == nil {
		onError = func(int, error) {}
	}
	return &Router{mux: http.NewServeMux(), onError: onError}
}

// Handle adds a route answered by fn (a HandlerFunc). Its parameter is
// an unnamed func type so that an extension's own route interface
// (extensions do not import this package) is satisfied by a Router.
func (rt *Router) Handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) (any, error)) {
	rt.mux.HandleFunc(pattern, rt.adapt(fn))
}

// HandleHTTP adds a route answered by a plain handler.
func (rt *Router) HandleHTTP(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// Func returns fn as a plain handler (its answers as Handle's).
func (rt *Router) Func(fn HandlerFunc) http.HandlerFunc { return rt.adapt(fn) }

// Before returns a handler that serves the router's routes and passes
// every other request to next (whose 405s and 404s are its own).
func (rt *Router) Before(next http.Handler) http.Handler { return rt.routed(rt.mux, next) }

func (rt *Router) adapt(fn HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(w, r)
		if err != nil {
			rt.WriteError(w, err)
			return
		}
		if v == nil {
			return // the handler wrote the response
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

// Pattern returns the route pattern r matches ("" for none).
func (rt *Router) Pattern(r *http.Request) string { _, p := rt.mux.Handler(r); return p }

// Handler returns the API: the routes, a 405 with Allow for a known path
// under another method, a JSON 404 for anything else; bodies are limited
// to maxBody bytes.
func (rt *Router) Handler(maxBody int64) http.Handler {
	return http.MaxBytesHandler(rt.routed(rt.mux, rt.notFound()), maxBody)
}

// WriteJSON answers v as JSON with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// WriteError answers err as a JSON error with its status (Status).
func (rt *Router) WriteError(w http.ResponseWriter, err error) { WriteError(w, err, rt.onError) }

// WriteError answers err as a JSON error with its status (Status), after
// telling onError (nil: nothing).
func WriteError(w http.ResponseWriter, err error, onError func(code int, err error)) {
	code, msg := Status(err)
	if onError != nil {
		onError(code, err)
	}
	WriteJSON(w, code, map[string]string{"error": msg})
}

// DecodeBody decodes the request's JSON body into v, refusing unknown
// fields, invalid UTF-8 and data after the object, with errors that say
// what is wrong and where.
func DecodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Errorf(http.StatusBadRequest, "empty request body: want a JSON object")
	}
	if err := checkBodyUTF8(data); err != nil { // jsonexact.go
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, data, v) // body.go
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "malformed JSON body: data after the object at offset %d", skipSpace(data, dec.InputOffset()))
	}
	return nil
}

//go:embed ui/index.html
var uiFS embed.FS

// StatusPage adds the status page (GET /).
func StatusPage(rt *Router) {
	rt.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := uiFS.ReadFile("ui/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(b)
	})
}
