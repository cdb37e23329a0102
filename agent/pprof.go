package agent

import (
	"net/http"
	"net/http/pprof"

	"github.com/replicad/replicad/agent/config"
)

// Config.Pprof (the environment variable REPLICAD_PPROF set to 1: see
// config.PprofEnv) enables Go's profiling endpoints (/debug/pprof/) on the
// API listener: for profiling a running agent (CPU, heap,
// allocations, goroutines) under a real load, as `replicad bench` does.
// They sit behind the same authentication as the rest of the API.

// pprofRoutes registers the profiling endpoints when Config.Pprof enables
// them.
func (a *Agent) pprofRoutes(mux *http.ServeMux) {
	if !a.cfg.Pprof {
		return
	}
	a.log.Info("profiling endpoints enabled", "env", config.PprofEnv, "path", "/debug/pprof/")
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
