package agent

import (
	"net/http"
	"strconv"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/ext/workflows"
	"github.com/replicad/replicad/internal/httpapi"
)

// The API of the work that only runs online: suspected duplicates
// (dedupe.go) and workflows (workflows.go).
func (a *Agent) onlineRoutes(rt *httpapi.Router) {
	rt.Handle("GET /v1/duplicates", a.listDuplicates)
	rt.Handle("POST /v1/duplicates/{table}/{id}", a.resolveDuplicateAPI)
	rt.Handle("GET /v1/workflows", a.listWorkflows)
	rt.Handle("GET /v1/workflows/{name}", a.getWorkflow)
	rt.Handle("GET /v1/workflows/{name}/deliveries", a.workflowDeliveries)
}

// listDuplicates: the open flags (?all=true: the resolved ones too).
func (a *Agent) listDuplicates(w http.ResponseWriter, r *http.Request) (any, error) {
	all := false
	if s := r.URL.Query().Get("all"); s != "" {
		var err error
		if all, err = strconv.ParseBool(s); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "all=%q: want true or false", s)
		}
	}
	return a.with(func(rp *replica) (any, error) {
		fs, err := rp.duplicates(all)
		if err != nil {
			return nil, err
		}
		return map[string]any{"duplicates": fs}, nil
	})
}

func (a *Agent) resolveDuplicateAPI(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := names(r)
	if err != nil {
		return nil, err
	}
	var body api.DuplicateRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	return a.with(func(rp *replica) (any, error) {
		return rp.resolveDuplicate(table, id, body)
	})
}

func (a *Agent) listWorkflows(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		out := []workflows.Status{}
		for _, f := range rp.flows.All() {
			out = append(out, f.View())
		}
		return map[string]any{"workflows": out}, nil
	})
}

func (rp *replica) workflow(name string) (*workflows.Workflow, error) {
	if f := rp.flows.Find(name); f != nil {
		return f, nil
	}
	return nil, httpapi.Errorf(http.StatusNotFound, "no workflow %q on this node", name)
}

// getWorkflow: one workflow's state and its latest deliveries.
func (a *Agent) getWorkflow(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		f, err := rp.workflow(r.PathValue("name"))
		if err != nil {
			return nil, err
		}
		ds, err := f.Deliveries(0, 20)
		if err != nil {
			return nil, err
		}
		return map[string]any{"workflow": f.View(), "deliveries": ds}, nil
	})
}

// workflowDeliveries: a workflow's recorded outcomes, newest first
// (?limit=N&before=CURSOR).
func (a *Agent) workflowDeliveries(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := intParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	var before uint64
	if s := r.URL.Query().Get("before"); s != "" {
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "before=%q: want a cursor", s)
		}
	}
	return a.with(func(rp *replica) (any, error) {
		f, err := rp.workflow(r.PathValue("name"))
		if err != nil {
			return nil, err
		}
		ds, err := f.Deliveries(before, limit)
		if err != nil {
			return nil, err
		}
		next := ""
		if len(ds) == limit {
			next = ds[len(ds)-1].Cursor
		}
		return map[string]any{"deliveries": ds, "next": next}, nil
	})
}
