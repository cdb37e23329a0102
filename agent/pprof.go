package agent

import (
	"net/http"
	"net/http/pprof"
	"os"
)

// pprofEnv enables Go's profiling endpoints (/debug/pprof/) on the API
// listener when set to 1: for profiling a running agent (CPU, heap,
// allocations, goroutines) under a real load, as `replicad bench` does.
// They sit behind the same authentication as the rest of the API.
const pprofEnv = "REPLICAD_PPROF"

// pprofRoutes registers the profiling endpoints when pprofEnv enables them.
func (a *Agent) pprofRoutes(mux *http.ServeMux) {
	if os.Getenv(pprofEnv) != "1" {
		return
	}
	a.log.Info("profiling endpoints enabled", "env", pprofEnv, "path", "/debug/pprof/")
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
