package agent

import (
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
)

// The API of the work that only runs online: suspected duplicates
// (internal/ext/dedupe) and workflows (internal/ext/workflows).
func (a *Agent) onlineRoutes(rt *httpapi.Router) {
	dedupe.NewAPI(dedupeHost{apiHost{a}}).Routes(rt)
	workflows.NewAPI(workflowsHost{apiHost{a}}).Routes(rt)
}

// dedupeHost is the duplicates' API's Host.
type dedupeHost struct{ apiHost }

func (h dedupeHost) With(fn func(dedupe.APIReplica) (any, error)) (any, error) {
	return h.a.with(func(rp *running) (any, error) { return fn(apiReplica{rp.n, rp}) })
}

// workflowsHost is the workflows' API's Host.
type workflowsHost struct{ apiHost }

func (h workflowsHost) With(fn func(*workflows.Set) (any, error)) (any, error) {
	return h.a.with(func(rp *running) (any, error) { return fn(rp.flows) })
}
