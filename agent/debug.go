package agent

import (
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/debugapi"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// debugRoutes adds the testing-only debug endpoints (internal/ext/debugapi)
// when Config.DebugAPI (REPLICAD_TESTING_DEBUG_API=1) enables them.
func (a *Agent) debugRoutes(rt *httpapi.Router) {
	if !a.cfg.DebugAPI {
		return
	}
	a.log.Warn("debug endpoints enabled (testing only)", "env", config.DebugAPIEnv)
	debugapi.New(hostOf(a, func(rp *running) debugapi.Replica { return httpapi.NodeRecords{Node: rp.n} }),
		debugapi.Config{MaxClockOffset: a.cfg.MaxClockOffset, Queues: []store.QueueName{arbiter.Queue, node.WriteBackQueue}}).Routes(rt)
}
