package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// Read permissions on the hub's API (the online path): a device's online
// reads are forwarded to the hub's API (onlinereads.go) and judged there
// by the device's read rules, as sync judges what it sends the device.
// The requester is the device of the client certificate (mutual TLS; the
// node id the device names in nodeHeader if its certificate binds it,
// else the certificate's id) or, without TLS, the node id nodeHeader
// claims (which anyone may claim: read permissions need TLS to mean
// anything). A request from a node whose reads are restricted may only
// read records: a table it may not read is 404, fields it may not read
// are left out of the answer (values, conflicts, bases), and of the sync
// errors (_replicad_errors) it reads only those naming it. Every other
// route answers 403.

// nodeHeader names the node an API request is made for (a device's
// forwarded online read).
const nodeHeader = "X-Replicad-Node"

// apiReader returns the node an API request reads for, if any.
func (a *Agent) apiReader(r *http.Request) (hlc.NodeID, bool, error) {
	claim := r.Header.Get(nodeHeader)
	var claimed hlc.NodeID
	if claim != "" {
		n, err := hlc.ParseNodeID(claim)
		if err != nil {
			return 0, false, errf(http.StatusBadRequest, "%s: %v", nodeHeader, err)
		}
		claimed = n
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := secure.StateIdentity(r.TLS)
		if err != nil {
			return 0, false, errf(http.StatusForbidden, "client certificate: %v", err)
		}
		if id.Role != "device" {
			return 0, false, nil // a hub's (or an operator's hub) certificate
		}
		if claim == "" {
			return hlc.NodeID(id.ID), true, nil
		}
		if !id.Allows(uint64(claimed)) {
			return 0, false, errf(http.StatusForbidden, "%s %s: the client certificate binds %016x/%d", nodeHeader, claim, id.ID, id.Bits)
		}
		return claimed, true, nil
	}
	if claim == "" {
		return 0, false, nil
	}
	return claimed, true, nil
}

// readGuard applies the requesting node's read rules to the API of a hub
// with read rules (see above); elsewhere it passes requests through.
func (a *Agent) readGuard(next http.Handler) http.Handler {
	if a.cfg.Role != "hub" || !a.sec.rules().hasReadRules() {
		return next
	}
	perms := a.sec.rules()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, ok, err := a.apiReader(r)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		tables, restricted := perms.readable(node)
		if !restricted {
			next.ServeHTTP(w, r)
			return
		}
		table, id, isRead := recordRoute(r)
		if !isRead || r.URL.Query().Has("draft") {
			a.writeError(w, errf(http.StatusForbidden, "node %s (read permissions) may only read records on this hub's API", node))
			return
		}
		lim := limitScope(node, tables)
		if !lim.Selects(table, "", nil, nil) && !lim.NeedsRecord(table) {
			a.writeError(w, errf(http.StatusNotFound, "table %s: not found (node %s may not read it)", table, node))
			return
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.code == http.StatusOK {
			if body, err = filterRead(body, lim, node, table, id != ""); err != nil {
				a.writeError(w, err)
				return
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.code)
		w.Write(body)
	})
}

// recordRoute reports whether r reads records: GET
// /v1/tables/{table}/records[/{id}].
func recordRoute(r *http.Request) (table, id string, ok bool) {
	if r.Method != http.MethodGet {
		return "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(parts) < 4 || len(parts) > 5 || parts[0] != "v1" || parts[1] != "tables" || parts[3] != "records" {
		return "", "", false
	}
	table, err := url.PathUnescape(parts[2])
	if err != nil || table == "" {
		return "", "", false
	}
	if len(parts) == 5 {
		if id, err = url.PathUnescape(parts[4]); err != nil || id == "" {
			return "", "", false
		}
	}
	return table, id, true
}

// filterRead filters a record (one) or a page of records from the API by
// lim: fields it does not hold are left out; records of a filtered system
// table (sync errors) it does not select are left out (one: 404).
func filterRead(body []byte, lim replication.Scope, node hlc.NodeID, table string, one bool) ([]byte, error) {
	keep := func(rec map[string]json.RawMessage) (bool, error) {
		if lim.NeedsRecord(table) && !namesNode(rec, node) {
			return false, nil
		}
		for _, k := range []string{"fields", "conflicts", "bases"} {
			raw, ok := rec[k]
			if !ok || bytes.Equal(raw, []byte("null")) {
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return false, err
			}
			for f := range m {
				if f != existsField && !lim.FieldAllowed(table, f) {
					delete(m, f)
				}
			}
			b, err := json.Marshal(m)
			if err != nil {
				return false, err
			}
			rec[k] = b
		}
		return true, nil
	}
	if one {
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(body, &rec); err != nil {
			return nil, err
		}
		ok, err := keep(rec)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errf(http.StatusNotFound, "record %s: not found (node %s may not read it)", table, node)
		}
		return json.Marshal(rec)
	}
	var page map[string]json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, err
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(page["records"], &recs); err != nil {
		return nil, err
	}
	out := make([]map[string]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		ok, err := keep(rec)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, rec)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	page["records"] = b
	return json.Marshal(page)
}

// namesNode reports whether a sync-error record's "nodes" field lists
// node (the only filtered system table).
func namesNode(rec map[string]json.RawMessage, node hlc.NodeID) bool {
	var fields struct {
		Nodes []string `json:"nodes"`
	}
	if err := json.Unmarshal(rec["fields"], &fields); err != nil {
		return false
	}
	for _, n := range fields.Nodes {
		if n == node.String() {
			return true
		}
	}
	return false
}

// recorder buffers a response to filter it.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// nodeID returns this node's id (0 while the replica is being reset).
func (a *Agent) nodeID() hlc.NodeID {
	v, _ := a.with(func(rp *replica) (any, error) { return rp.node, nil })
	n, _ := v.(hlc.NodeID)
	return n
}
