package agent

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/httpapi"
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
// read records: a table it may not read is 404; the records it reads are
// narrowed by its read limit before their views are built (readView):
// fields it may not read are not in the answer (values, conflicts,
// bases), and of the sync errors (_replicad_errors) it reads only those
// naming it. Every other route answers 403.

// nodeHeader names the node an API request is made for (a device's
// forwarded online read).
const nodeHeader = onlineread.NodeHeader

// apiReader returns the node an API request reads for, if any.
func (a *Agent) apiReader(r *http.Request) (hlc.NodeID, bool, error) {
	claim := r.Header.Get(nodeHeader)
	var claimed hlc.NodeID
	if claim != "" {
		n, err := hlc.ParseNodeID(claim)
		if err != nil {
			return 0, false, httpapi.Errorf(http.StatusBadRequest, "%s: %v", nodeHeader, err)
		}
		claimed = n
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := secure.StateIdentity(r.TLS)
		if err != nil {
			return 0, false, httpapi.Errorf(http.StatusForbidden, "client certificate: %v", err)
		}
		if id.Role != "device" {
			return 0, false, nil // a hub's (or an operator's hub) certificate
		}
		if claim == "" {
			return hlc.NodeID(id.ID), true, nil
		}
		if !id.Allows(uint64(claimed)) {
			return 0, false, httpapi.Errorf(http.StatusForbidden, "%s %s: the client certificate binds %016x/%d", nodeHeader, claim, id.ID, id.Bits)
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
	if a.cfg.Role != "hub" || !a.sec.rules().HasReadRules() {
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
		tables, restricted := perms.Readable(node)
		if !restricted {
			next.ServeHTTP(w, r)
			return
		}
		table, _, isRead := recordRoute(r)
		if !isRead || r.URL.Query().Has("draft") {
			a.writeError(w, httpapi.Errorf(http.StatusForbidden, "node %s (read permissions) may only read records on this hub's API", node))
			return
		}
		lim := authz.LimitScope(node, tables)
		if !lim.Selects(table, "", nil, nil) && !lim.NeedsRecord(table) {
			a.writeError(w, httpapi.Errorf(http.StatusNotFound, "table %s: not found (node %s may not read it)", table, node))
			return
		}
		// The record handlers build the reader's views (readView).
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readerKey{}, &reader{node: node, limit: lim})))
	})
}

// reader is a restricted node an API request reads for, and its read
// limit.
type reader struct {
	node  hlc.NodeID
	limit replication.Scope
}

type readerKey struct{}

// readerOf returns the restricted reader of r (nil: unrestricted).
func readerOf(r *http.Request) *reader {
	rd, _ := r.Context().Value(readerKey{}).(*reader)
	return rd
}

// readView is the view of record table/id for rd (nil: unrestricted), and
// false if rd may not read the record. It is where the API applies read
// permissions, the way sync applies them to what it sends a device: the
// record is narrowed by the reader's limit (replication.Scope: Selects,
// then ProjectRecord, as a session narrows whole records) before the view
// is built, so nothing the view shows comes from a field the reader may
// not read.
func (rp *replica) readView(rd *reader, table, id string, rec *crdt.Record) (api.Record, bool) {
	if rd != nil {
		if rd.limit.NeedsRecord(table) && !rd.limit.Selects(table, id, rec, nil) {
			return api.Record{}, false
		}
		rec = rd.limit.ProjectRecord(table, rec)
	}
	return rp.recordView(table, id, rec), true
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

// nodeID returns this node's id (0 while the replica is being reset).
func (a *Agent) nodeID() hlc.NodeID {
	v, _ := a.with(func(rp *replica) (any, error) { return rp.node, nil })
	n, _ := v.(hlc.NodeID)
	return n
}
