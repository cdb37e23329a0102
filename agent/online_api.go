package agent

import (
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
)

// The API of the work that only runs online: suspected duplicates
// (internal/ext/dedupe) and workflows (internal/ext/workflows).
func (a *Agent) onlineRoutes(rt *httpapi.Router) {
	dedupe.NewAPI(hostOf(a, (*running).records)).Routes(rt)
	workflows.NewAPI(hostOf(a, func(rp *running) *workflows.Set { return rp.flows })).Routes(rt)
}
