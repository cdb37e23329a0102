package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/filter"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/source"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/store"
)

// Queries over HTTP: GET /v1/tables/{table}/records with where, order,
// cursor, fields, count or explain runs a query (package query) on one
// snapshot of the replica and answers an api.Page whose records are
// rendered as GET /v1/tables/{table}/records/{id} renders them (node
// View: conflicts, bases, pending), or an api.Count. draft=true lays this
// node's drafts over the records before the query judges them (the
// table is then scanned: drafts are in no index); online=true asks the
// hub. A restricted reader (read permissions on a hub's API) may name
// only fields it may read (403 otherwise), and the query runs on the
// records as it may read them, so its pages and counts are of those.
// watch=true keeps the query live (watch.go); the views are in views.go.

// QueryCore is what the query, view and watch routes need of the
// replica; the assembly implements it.
type QueryCore interface {
	Core
	// WatchFrom keeps q live on the current replica after event
	// lastEventID ("" for the result first): replica.Replica.WatchFrom.
	WatchFrom(ctx context.Context, q replica.Query, lastEventID string) (<-chan replica.Event, error)
	// DeviceAttrs returns the attributes device.* reads in a where
	// clause: this replica's own (replica.Replica.DeviceAttrs).
	DeviceAttrs() map[string]string
	// Views returns the views the hubs declared, by name
	// (replica.Replica.Views).
	Views() []replica.View
}

// FieldReader is a Reader that tells which fields of a table it may
// read; a Reader that does not is taken to read none by name.
type FieldReader interface {
	FieldAllowed(table, field string) bool
}

// Query parameters: a request naming one of these is a query; without
// them GET /v1/tables/{table}/records pages by limit and after.
var queryParams = []string{"where", "order", "cursor", "fields", "count", "explain", "watch"}

// modeParams are the parameters of the query routes that are not the
// query's own (query.FromParams refuses any other).
var modeParams = []string{"draft", "online", "watch", "last_event_id", "timeout"}

// IsQuery reports whether r's parameters make GET .../records a query.
func IsQuery(r *http.Request) bool {
	v := r.URL.Query()
	for _, p := range queryParams {
		if v.Has(p) {
			return true
		}
	}
	return false
}

// Queries serves the query routes. Make it with NewQueries; Close it when
// the server shuts down (its event streams end).
type Queries struct {
	Core QueryCore
	// Online answers online=true: the same request on the hub's API
	// (internal/ext/onlineread), nil: refused.
	Online interface {
		Forward(w http.ResponseWriter, r *http.Request, local func() (any, error)) (any, error)
	}
	streams   chan struct{} // a slot per watch in progress
	heartbeat time.Duration
	done      chan struct{}
	closeOnce sync.Once
	held      heldSets // restricted readers' held sets (watchheld.go)
}

// DefaultMaxLiveQueries bounds the live queries (event streams and long
// polls) served at once when NewQueries is given 0.
const DefaultMaxLiveQueries = 256

// NewQueries returns the query routes of core, serving at most
// maxWatches live queries at once (0: DefaultMaxLiveQueries).
func NewQueries(core QueryCore, maxWatches int) *Queries {
	if maxWatches <= 0 {
		maxWatches = DefaultMaxLiveQueries
	}
	return &Queries{Core: core, streams: make(chan struct{}, maxWatches), heartbeat: 15 * time.Second, done: make(chan struct{})}
}

// Close ends every event stream and long poll in progress and refuses
// new ones: call it before http.Server.Shutdown, which then does not
// wait for them.
func (qs *Queries) Close() { qs.closeOnce.Do(func() { close(qs.done) }) }

// viewDecl is the declaration of a view a request queries.
type viewDecl struct {
	name, table, where string
	order              []string
}

// request is a parsed query request.
type request struct {
	q      query.Query
	p      *query.Prepared
	draft  bool
	online bool
	watch  bool
	reader Reader
}

// queryError is a *query.Error answered as a 400 naming the parameter
// and the position.
func queryError(err error) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		return Errorf(http.StatusBadRequest, "%s", qe.Error())
	}
	return err
}

// parse reads the query of r on table: its parameters (query.FromParams,
// besides modeParams), checked (query.Prepare) and judged against r's
// reader's read permissions.
func (qs *Queries) parse(r *http.Request, table string, view *viewDecl) (*request, error) {
	if !store.ValidTable(table) {
		return nil, Errorf(http.StatusBadRequest, "bad table name %q: 1-%d characters from [A-Za-z0-9_.-]", table, store.MaxTableLen)
	}
	draft, online, err := ReadModes(r, true, true)
	if err != nil {
		return nil, err
	}
	watch, err := boolParam(r, "watch")
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	for k, vals := range r.URL.Query() {
		v[k] = vals
	}
	for _, p := range []string{"last_event_id", "timeout"} {
		if v.Has(p) && !watch {
			return nil, Errorf(http.StatusBadRequest, "%s: at offset 0: it applies to a live query (watch=true)", p)
		}
	}
	for _, m := range modeParams {
		delete(v, m)
	}
	q, err := query.FromParams(table, v)
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) && !slices.Contains(query.Options, qe.Param) {
			return nil, Errorf(http.StatusBadRequest, "%s: at offset 0: unknown option (known: %s, %s)", qe.Param,
				strings.Join(query.Options, ", "), strings.Join(modeParams, ", "))
		}
		return nil, queryError(err)
	}
	if view != nil {
		if q.Where != "" || len(q.Order) > 0 {
			return nil, Errorf(http.StatusBadRequest, "view %s has the where and order of its declaration: query table %s for others", view.name, view.table)
		}
		q.Where, q.Order = view.where, view.order
	}
	if watch && (q.Count || q.Explain) {
		return nil, Errorf(http.StatusBadRequest, "watch=true keeps a result live: count and explain are for a query's answer")
	}
	if watch && online {
		return nil, Errorf(http.StatusBadRequest, "watch=true and online=true do not go together: a live query runs on this node")
	}
	if watch && draft {
		return nil, Errorf(http.StatusBadRequest, "watch=true and draft=true do not go together: drafts are not kept live")
	}
	p, err := query.Prepare(q)
	if err != nil {
		var qe *query.Error
		if view != nil && errors.As(err, &qe) && (qe.Param == "where" || qe.Param == "order") {
			return nil, Errorf(http.StatusInternalServerError, "view %s cannot run here: %v", view.name, err)
		}
		return nil, queryError(err)
	}
	req := &request{q: q, p: p, draft: draft, online: online, watch: watch, reader: qs.Core.Reader(r)}
	if err := req.checkReader(); err != nil {
		return nil, err
	}
	return req, nil
}

// checkReader refuses (403) a query naming a field its reader may not
// read in its where clause, its order or its fields, and a where clause
// reading record[...] (which could name any field).
func (req *request) checkReader() error {
	if req.reader == nil {
		return nil
	}
	table := req.q.Table
	fr, _ := req.reader.(FieldReader)
	allowed := func(f string) bool { return f == "id" || fr != nil && fr.FieldAllowed(table, f) }
	refuse := func(param, f string) error {
		return Errorf(http.StatusForbidden, "%s names field %q, which node %s may not read in table %s", param, f, req.reader, table)
	}
	if strings.TrimSpace(req.q.Where) != "" {
		x, err := filter.Cached(req.q.Where) // compiled by Prepare
		if err != nil {
			return queryError(err)
		}
		for _, f := range x.Fields() {
			if !allowed(f) {
				return refuse("where", f)
			}
		}
		if x.ReadsAll() {
			return Errorf(http.StatusForbidden, "where reads record[...]: node %s has read permissions, name the fields of table %s instead", req.reader, table)
		}
	}
	for _, o := range req.q.Order {
		if f := strings.TrimPrefix(o, "-"); !allowed(f) {
			return refuse("order", f)
		}
	}
	for _, f := range req.q.Fields {
		if !allowed(f) {
			return refuse("fields", f)
		}
	}
	return nil
}

// List is GET /v1/tables/{table}/records: a query when the request names
// query parameters (IsQuery), else the page of records by limit and
// after (Modes.List).
func (qs *Queries) List(modes Modes) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		if !IsQuery(r) {
			return modes.List(w, r)
		}
		return qs.Records(w, r)
	}
}

// Records answers a query of GET /v1/tables/{table}/records.
func (qs *Queries) Records(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := qs.parse(r, r.PathValue("table"), nil)
	if err != nil {
		return nil, err
	}
	return qs.answer(w, r, req)
}

// answer runs req: online, live or once.
func (qs *Queries) answer(w http.ResponseWriter, r *http.Request, req *request) (any, error) {
	switch {
	case req.online:
		if qs.Online == nil {
			return nil, Errorf(http.StatusBadRequest, "online=true: this node makes no online reads")
		}
		return qs.Online.Forward(w, r, func() (any, error) { return qs.run(req) })
	case req.watch:
		return nil, qs.watch(w, r, req)
	}
	return qs.run(req)
}

// run answers req once: an api.Count or an api.Page.
func (qs *Queries) run(req *request) (any, error) {
	return qs.Core.With(func(n *node.Node) (any, error) {
		src, err := source.Open(n.Store())
		if err != nil {
			return nil, err
		}
		defer src.Close()
		var s query.Source = src
		var ds *draftSource
		if req.draft {
			if ds, err = withDrafts(s, n, req.q.Table); err != nil {
				return nil, err
			}
			s = ds
		}
		if req.reader != nil {
			s = readerSource{Source: s, rd: req.reader}
		}
		res, err := req.p.Run(s, query.Env{NowMs: time.Now().UnixMilli(), Device: qs.Core.DeviceAttrs()})
		if err != nil {
			return nil, queryError(err)
		}
		if req.q.Count {
			return api.Count{Count: res.Count}, nil
		}
		page := api.Page{Records: make([]api.Record, 0, len(res.Records)), Next: res.Next}
		for _, qr := range res.Records {
			page.Records = append(page.Records, renderRecord(n, ds, req.q.Table, qr.ID, qr.State, req.q.Fields))
		}
		if res.Plan != nil {
			page.Plan = &api.Plan{Index: res.Plan.Index, Examined: res.Plan.Examined}
		}
		return page, nil
	})
}

// renderRecord is record table/id as GET /v1/tables/{table}/records/{id}
// shows it (node View; with draft=true its draft's values laid over its
// fields, as GET ...?draft=true does), projected to fields (none: all).
func renderRecord(n *node.Node, ds *draftSource, table, id string, rec *crdt.Record, fields []string) api.Record {
	var v api.Record
	if ds != nil {
		v = ds.view(n, table, id, rec)
	} else {
		v = n.View(table, id, rec)
	}
	if len(fields) == 0 {
		return v
	}
	keep := map[string]bool{"_exists": true}
	for _, f := range fields {
		keep[f] = true
	}
	for name := range v.Fields {
		if !keep[name] {
			delete(v.Fields, name)
		}
	}
	for name := range v.Conflicts {
		if !keep[name] {
			delete(v.Conflicts, name)
		}
	}
	for name := range v.Bases {
		if !keep[name] {
			delete(v.Bases, name)
		}
	}
	return v
}

// readerSource is a query.Source of the records as a restricted reader
// may read them (Reader.Narrow): the others are not there, and of
// those there only the fields it may read. It offers the indexes of
// fields it may all read (the query judges each record the index gives
// as Get narrows it).
type readerSource struct {
	query.Source
	rd Reader
}

func (s readerSource) Indexes(table string) []query.Index {
	fr, _ := s.rd.(FieldReader)
	var out []query.Index
	for _, ix := range s.Source.Indexes(table) {
		ok := fr != nil
		for _, f := range ix.Fields {
			ok = ok && fr.FieldAllowed(table, f)
		}
		if ok {
			out = append(out, ix)
		}
	}
	return out
}

func (s readerSource) Get(table, id string) (*crdt.Record, bool, error) {
	rec, ok, err := s.Source.Get(table, id)
	if err != nil || !ok {
		return rec, ok, err
	}
	rec, ok = s.rd.Narrow(table, id, rec)
	return rec, ok, nil
}

func (s readerSource) Scan(table, after string, fn func(id string, rec *crdt.Record) bool) error {
	return s.Source.Scan(table, after, func(id string, rec *crdt.Record) bool {
		if nr, ok := s.rd.Narrow(table, id, rec); ok {
			return fn(id, nr)
		}
		return true
	})
}

// draftSource is a query.Source with this node's drafts of one table
// laid over its records: a drafted record shows its draft's values (a
// draft of a record not here is a record of those values alone). It
// offers no index (drafted values are in none), so queries scan.
type draftSource struct {
	query.Source
	table  string
	drafts map[string]*store.Draft
	ids    []string // of drafts, sorted
	over   map[string]*crdt.Record
}

// draftOrigin stands for the drafts' writer in the records they make:
// not a node id a replica takes (those are random 64-bit values; this is
// the largest).
const draftOrigin = hlc.NodeID(^uint64(0))

// withDrafts lays n's drafts of table over s.
func withDrafts(s query.Source, n *node.Node, table string) (*draftSource, error) {
	d := &draftSource{Source: s, table: table, drafts: map[string]*store.Draft{}, over: map[string]*crdt.Record{}}
	afterID := ""
	for {
		afterTable := ""
		if afterID != "" {
			afterTable = table
		}
		page, err := n.Store().ListDrafts(table, afterTable, afterID, 1000)
		if err != nil {
			return nil, err
		}
		for _, dr := range page {
			if n.Store().Hidden(table, dr.ID) {
				continue // out of this device's scope: not shown, drafted or not
			}
			d.drafts[dr.ID] = dr
			d.ids = append(d.ids, dr.ID)
		}
		if len(page) < 1000 {
			break
		}
		afterID = page[len(page)-1].ID
	}
	sort.Strings(d.ids)
	return d, nil
}

// overlay returns rec (nil: none here) with draft dr laid over it.
func overlay(rec *crdt.Record, dr *store.Draft) *crdt.Record {
	var out *crdt.Record
	if rec != nil {
		out = rec.Clone()
	} else {
		out = &crdt.Record{}
	}
	ctx := out.Context()
	w := &crdt.Write{Table: dr.Table, ID: dr.ID, Origin: draftOrigin, Seq: ctx.Get(draftOrigin) + 1,
		TS: hlc.New(max(dr.Updated, 1), 0), Ctx: ctx}
	for name, v := range dr.Fields {
		w.Fields = append(w.Fields, crdt.FieldValue{Name: name, Value: crdt.Value(v)})
	}
	sort.Slice(w.Fields, func(i, j int) bool { return w.Fields[i].Name < w.Fields[j].Name })
	out.Apply(w, nil) // its context covers every candidate: the draft's values win
	return out
}

func (d *draftSource) Indexes(string) []query.Index { return nil }

func (d *draftSource) IndexScan(string, []byte, []byte, bool, func([]byte, string) bool) error {
	return fmt.Errorf("drafts: no index")
}

func (d *draftSource) Get(table, id string) (*crdt.Record, bool, error) {
	rec, ok, err := d.Source.Get(table, id)
	if err != nil || table != d.table {
		return rec, ok, err
	}
	dr := d.drafts[id]
	if dr == nil {
		return rec, ok, nil
	}
	if !ok {
		rec = nil
	}
	return overlay(rec, dr), true, nil
}

func (d *draftSource) Scan(table, after string, fn func(id string, rec *crdt.Record) bool) error {
	if table != d.table {
		return d.Source.Scan(table, after, fn)
	}
	i := sort.SearchStrings(d.ids, after)
	if i < len(d.ids) && d.ids[i] == after {
		i++
	}
	more := true
	err := d.Source.Scan(table, after, func(id string, rec *crdt.Record) bool {
		for ; i < len(d.ids) && d.ids[i] < id; i++ { // drafts of records not here
			if more = fn(d.ids[i], overlay(nil, d.drafts[d.ids[i]])); !more {
				return false
			}
		}
		if i < len(d.ids) && d.ids[i] == id {
			rec = overlay(rec, d.drafts[id])
			i++
		}
		more = fn(id, rec)
		return more
	})
	for ; err == nil && more && i < len(d.ids); i++ {
		more = fn(d.ids[i], overlay(nil, d.drafts[d.ids[i]]))
	}
	return err
}

// view renders a record of a draft=true query: the record as GET
// ...?draft=true shows it (the stored record's view with the draft's
// values over its fields; a draft alone, its values).
func (d *draftSource) view(n *node.Node, table, id string, rec *crdt.Record) api.Record {
	dr := d.drafts[id]
	if dr == nil {
		return n.View(table, id, rec)
	}
	var v api.Record
	if stored, ok, err := d.Source.Get(table, id); err == nil && ok && stored.Exists() {
		v = n.View(table, id, stored)
	} else {
		v = n.View(table, id, &crdt.Record{})
		v.Deleted = false
	}
	for name, val := range dr.Fields {
		v.Fields[name] = node.JSONValue(crdt.Value(val))
	}
	return v
}
