package workflows

import (
	"net/http"
	"strconv"

	"github.com/replicad/replicad/internal/ext/extapi"
)

// APIHost is what the workflows' API needs of the agent: the current
// replica's workflows (nil: none) and the public API's request parsing.
type APIHost interface {
	extapi.Current[*Set]
	extapi.Requests
}

// API is the workflows' endpoints.
type API struct{ h APIHost }

// NewAPI returns the workflows' endpoints of h.
func NewAPI(h APIHost) *API { return &API{h: h} }

// Routes adds GET /v1/workflows, /v1/workflows/{name} and its deliveries.
func (a *API) Routes(rt extapi.Registrar) {
	rt.Handle("GET /v1/workflows", a.list)
	rt.Handle("GET /v1/workflows/{name}", a.get)
	rt.Handle("GET /v1/workflows/{name}/deliveries", a.deliveries)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(ws *Set) (any, error) {
		out := ws.Views()
		if out == nil {
			out = []Status{}
		}
		return map[string]any{"workflows": out}, nil
	})
}

func find(ws *Set, name string) (*Workflow, error) {
	if f := ws.Find(name); f != nil {
		return f, nil
	}
	return nil, extapi.Errorf(http.StatusNotFound, "no workflow %q on this node", name)
}

// get: one workflow's state and its latest deliveries.
func (a *API) get(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(ws *Set) (any, error) {
		f, err := find(ws, r.PathValue("name"))
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

// deliveries: a workflow's recorded outcomes, newest first
// (?limit=N&before=CURSOR).
func (a *API) deliveries(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := a.h.PageLimit(r)
	if err != nil {
		return nil, err
	}
	var before uint64
	if s := r.URL.Query().Get("before"); s != "" {
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, extapi.Errorf(http.StatusBadRequest, "before=%q: want a cursor", s)
		}
	}
	return a.h.With(func(ws *Set) (any, error) {
		f, err := find(ws, r.PathValue("name"))
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
