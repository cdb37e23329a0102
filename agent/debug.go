package agent

import (
	"net/http"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
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
	debugapi.New(debugHost{apiHost{a}}).Routes(rt)
}

// debugHost is the debug endpoints' Host.
type debugHost struct{ apiHost }

func (h debugHost) With(fn func(debugapi.Replica) (any, error)) (any, error) {
	return h.a.with(func(rp *running) (any, error) { return fn(debugReplica{rp.n, rp}) })
}

// PutFields decodes a PUT body that must have "fields".
func (h debugHost) PutFields(r *http.Request) ([]crdt.FieldValue, error) {
	fields, present, err := h.apiHost.PutFields(r, nil)
	if err == nil && !present {
		err = httpapi.Errorf(http.StatusBadRequest, `body needs "fields": an object of field names to JSON values`)
	}
	return fields, err
}

func (h debugHost) MaxClockOffset() time.Duration { return h.a.cfg.MaxClockOffset }

func (debugHost) Queues() []store.QueueName {
	return []store.QueueName{arbiter.Queue, authz.WriteBackQueue}
}

// debugReplica is the debug endpoints' view of a replica.
type debugReplica struct {
	*node.Node
	rp *running
}

func (d debugReplica) Existing(table, id string) (*crdt.Record, error) {
	return d.rp.existing(table, id)
}

func (d debugReplica) RecordView(table, id string, rec *crdt.Record) any {
	return d.rp.recordView(table, id, rec)
}
