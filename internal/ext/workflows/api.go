package workflows

import (
	"fmt"
	"net/http"
	"strconv"
)

// APIHost is what the workflows' API needs of the agent.
type APIHost interface {
	// With runs fn on the current replica's workflows (nil: none; a reset
	// may replace them between calls); fn's error is the answer's.
	With(fn func(ws *Set) (any, error)) (any, error)
	// PageLimit is the request's ?limit as the public API takes it.
	PageLimit(r *http.Request) (int, error)
}

// Registrar adds a route whose handler returns a value (answered as
// JSON) or an error (answered with its status): the agent's HTTP API.
type Registrar interface {
	Handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) (any, error))
}

// API is the workflows' endpoints.
type API struct{ h APIHost }

// NewAPI returns the workflows' endpoints of h.
func NewAPI(h APIHost) *API { return &API{h: h} }

// Routes adds GET /v1/workflows, /v1/workflows/{name} and its deliveries.
func (a *API) Routes(rt Registrar) {
	rt.Handle("GET /v1/workflows", a.list)
	rt.Handle("GET /v1/workflows/{name}", a.get)
	rt.Handle("GET /v1/workflows/{name}/deliveries", a.deliveries)
}

// Error is an answer's error with its HTTP status (its Status method).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Status is the HTTP status the error is answered with.
func (e *Error) Status() int { return e.Code }

func (a *API) list(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(ws *Set) (any, error) {
		out := []Status{}
		for _, f := range ws.All() {
			out = append(out, f.View())
		}
		return map[string]any{"workflows": out}, nil
	})
}

func find(ws *Set, name string) (*Workflow, error) {
	if f := ws.Find(name); f != nil {
		return f, nil
	}
	return nil, &Error{http.StatusNotFound, fmt.Sprintf("no workflow %q on this node", name)}
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
			return nil, &Error{http.StatusBadRequest, fmt.Sprintf("before=%q: want a cursor", s)}
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
