package httpapi

import (
	"net/http/pprof"
)

// Config.Pprof (the environment variable REPLICAD_PPROF set to 1: see
// config.PprofEnv) enables Go's profiling endpoints (/debug/pprof/) on the
// API listener: for profiling a running agent (CPU, heap,
// allocations, goroutines) under a real load, as `replicad bench` does.
// They sit behind the same authentication as the rest of the API.

// Pprof adds the profiling endpoints (Config.Pprof enables them).
func Pprof(rt *Router) {
	mux := rt.mux
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
