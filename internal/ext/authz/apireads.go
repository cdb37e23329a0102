package authz

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
)

// Read permissions on the hub's API (the online path): a device's online
// reads are forwarded to the hub's API (internal/ext/onlineread) and judged there
// by the device's read rules, as sync judges what it sends the device.
// The requester is the device of the client certificate (mutual TLS; the
// node id the device names in the node header if its certificate binds it,
// else the certificate's id) or, without TLS, the node id nodeHeader
// claims (which anyone may claim: read permissions need TLS to mean
// anything). A request from a node whose reads are restricted may only
// read records: a table it may not read is 404; the records it reads are
// narrowed by its read limit before their views are built (Reader.Narrow):
// fields it may not read are not in the answer (values, conflicts,
// bases), and of the sync errors (_replicad_errors) it reads only those
// naming it. Every other route answers 403.

// APIReader returns the node an API request reads for, if any; header is
// the header a node is named in.
func APIReader(r *http.Request, header string) (hlc.NodeID, bool, error) {
	claim := r.Header.Get(header)
	var claimed hlc.NodeID
	if claim != "" {
		n, err := hlc.ParseNodeID(claim)
		if err != nil {
			return 0, false, extapi.Errorf(http.StatusBadRequest, "%s: %v", header, err)
		}
		claimed = n
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := secure.StateIdentity(r.TLS)
		if err != nil {
			return 0, false, extapi.Errorf(http.StatusForbidden, "client certificate: %v", err)
		}
		if id.Role != "device" {
			return 0, false, nil // a hub's (or an operator's hub) certificate
		}
		if claim == "" {
			return hlc.NodeID(id.ID), true, nil
		}
		if !id.Allows(uint64(claimed)) {
			return 0, false, extapi.Errorf(http.StatusForbidden, "%s %s: the client certificate binds %016x/%d", header, claim, id.ID, id.Bits)
		}
		return claimed, true, nil
	}
	if claim == "" {
		return 0, false, nil
	}
	return claimed, true, nil
}

// ReadGuard applies the requesting node's read rules (perms) to the API of
// a hub (see above): next serves requests of unrestricted nodes, and
// restricted nodes' record reads with their Reader (ReaderOf); fail
// answers an error. header is the header a node is named in.
func ReadGuard(next http.Handler, perms *Rules, header string, fail func(w http.ResponseWriter, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, ok, err := APIReader(r, header)
		if err != nil {
			fail(w, err)
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
		lim := LimitScope(node, tables)
		table, _, isRead := recordRoute(r)
		if !isRead && viewRoute(r) && !r.URL.Query().Has("draft") {
			// The view handlers run the view on the records as the reader
			// may read them; a view of a table it may not read is not there.
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readerKey{}, &Reader{Node: node, Limit: lim})))
			return
		}
		if !isRead || r.URL.Query().Has("draft") {
			fail(w, extapi.Errorf(http.StatusForbidden, "node %s (read permissions) may only read records and views on this hub's API", node))
			return
		}
		if !lim.Selects(table, "", nil, nil) && !lim.NeedsRecord(table) {
			fail(w, extapi.Errorf(http.StatusNotFound, "table %s: not found (node %s may not read it)", table, node))
			return
		}
		// The record handlers build the reader's views (Reader.Narrow).
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readerKey{}, &Reader{Node: node, Limit: lim})))
	})
}

// Reader is a restricted node an API request reads for, and its read
// limit.
type Reader struct {
	Node  hlc.NodeID
	Limit replication.Scope
}

type readerKey struct{}

// ReaderOf returns the restricted reader of r (nil: unrestricted).
func ReaderOf(r *http.Request) *Reader {
	rd, _ := r.Context().Value(readerKey{}).(*Reader)
	return rd
}

// Narrow returns record table/id as rd (nil: unrestricted) may read it,
// and false if rd may not read the record. It is where the API applies
// read permissions, the way sync applies them to what it sends a device:
// the record is narrowed by the reader's limit (replication.Scope:
// Selects, then ProjectRecord, as a session narrows whole records) before
// its view is built, so nothing the view shows comes from a field the
// reader may not read.
func (rd *Reader) Narrow(table, id string, rec *crdt.Record) (*crdt.Record, bool) {
	if rd == nil {
		return rec, true
	}
	if !rd.TableReadable(table) {
		return nil, false
	}
	if rd.Limit.NeedsRecord(table) && !rd.Limit.Selects(table, id, rec, nil) {
		return nil, false
	}
	return rd.Limit.ProjectRecord(table, rec), true
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

// viewRoute reports whether r reads views: GET /v1/views[/{name}].
func viewRoute(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	p := r.URL.EscapedPath()
	return p == "/v1/views" || strings.HasPrefix(p, "/v1/views/") && !strings.Contains(p[len("/v1/views/"):], "/")
}

// TableReadable reports whether rd may read any record of table.
func (rd *Reader) TableReadable(table string) bool {
	return rd.Limit.Selects(table, "", nil, nil) || rd.Limit.NeedsRecord(table)
}

// String names the reader's node.
func (rd *Reader) String() string { return rd.Node.String() }

// FieldAllowed reports whether rd may read field of table (its read
// limit; httpapi.FieldReader).
func (rd *Reader) FieldAllowed(table, field string) bool { return rd.Limit.FieldAllowed(table, field) }
