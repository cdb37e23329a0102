package httpapi

import (
	"net/http"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/source"
	"github.com/replicad/replicad/replica"
)

// Views: GET /v1/views lists the views the hubs declared
// (replica.Replica.Views), each with how many records it holds here now,
// or why it cannot run here; GET /v1/views/{name} answers as a query of
// the view's table, where and order (limit, cursor, fields, explain,
// count, watch, draft and online as on GET /v1/tables/{table}/records;
// where and order are the view's own, refused). An unknown view is a
// 404. With online=true both are the hub's answers. A restricted reader
// (read permissions) runs views as it runs queries, on the records and
// fields it may read: a view naming a field it may not read is refused,
// and a view of a table it may not read is not there for it.

// ListViews is GET /v1/views[?online=true].
func (qs *Queries) ListViews(w http.ResponseWriter, r *http.Request) (any, error) {
	for k := range r.URL.Query() {
		if k != "online" {
			return nil, Errorf(http.StatusBadRequest, "%s: at offset 0: unknown option (GET /v1/views takes online)", k)
		}
	}
	_, online, err := ReadModes(r, false, true)
	if err != nil {
		return nil, err
	}
	if online {
		if qs.Online == nil {
			return nil, Errorf(http.StatusBadRequest, "online=true: this node makes no online reads")
		}
		return qs.Online.Forward(w, r, func() (any, error) { return qs.listViews(r) })
	}
	return qs.listViews(r)
}

// listViews counts each view's records on one snapshot.
func (qs *Queries) listViews(r *http.Request) (any, error) {
	views := qs.Core.Views()
	rd := qs.Core.Reader(r)
	device := qs.Core.DeviceAttrs()
	return qs.Core.With(func(n *node.Node) (any, error) {
		src, err := source.Open(n.Store())
		if err != nil {
			return nil, err
		}
		defer src.Close()
		var s query.Source = src
		if rd != nil {
			s = readerSource{Source: s, rd: rd}
		}
		out := api.ViewList{Views: make([]api.View, 0, len(views))}
		now := time.Now().UnixMilli()
		for _, v := range views {
			if !tableReadable(rd, v.Table) {
				continue
			}
			av := api.View{Name: v.Name, Table: v.Table, Where: v.Where, Order: v.Order}
			if av.Order == nil {
				av.Order = []string{}
			}
			req := &request{q: query.Query{Table: v.Table, Where: v.Where, Order: v.Order, Count: true}, reader: rd}
			if err := req.checkReader(); err != nil {
				av.Error = err.Error()
			} else if res, err := query.Execute(s, req.q, query.Env{NowMs: now, Device: device}); err != nil {
				av.Error = err.Error()
			} else {
				av.Count = res.Count
			}
			out.Views = append(out.Views, av)
		}
		return out, nil
	})
}

// View is GET /v1/views/{name}: the view as a query.
func (qs *Queries) View(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	var decl *viewDecl
	for _, v := range qs.Core.Views() {
		if v.Name == name {
			decl = viewOf(v)
			break
		}
	}
	if decl != nil && !tableReadable(qs.Core.Reader(r), decl.table) {
		return nil, errNoView(name) // as a table it may not read is not found
	}
	if decl == nil {
		if _, online, err := ReadModes(r, true, true); err == nil && online && qs.Online != nil {
			// The hub may know a view this node has not heard of yet.
			return qs.Online.Forward(w, r, func() (any, error) { return nil, errNoView(name) })
		}
		return nil, errNoView(name)
	}
	req, err := qs.parse(r, decl.table, decl)
	if err != nil {
		return nil, err
	}
	return qs.answer(w, r, req)
}

func errNoView(name string) error {
	return Errorf(http.StatusNotFound, "no view %q here (GET /v1/views lists the views the hubs declared)", name)
}

func viewOf(v replica.View) *viewDecl {
	return &viewDecl{name: v.Name, table: v.Table, where: v.Where, order: v.Order}
}

// tableReadable reports whether rd (nil: unrestricted) may read records
// of table: the views of a table it may not read are not listed, and
// not found by name.
func tableReadable(rd Reader, table string) bool {
	if rd == nil {
		return true
	}
	tr, ok := rd.(interface{ TableReadable(string) bool })
	return !ok || tr.TableReadable(table)
}
