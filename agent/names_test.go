package agent

import (
	"net/http"

	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/onlineread"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
)

// The system tables and headers the tests name (internal/node, authz,
// onlineread).
const (
	policyTable   = node.PolicyTable
	errorTable    = node.ErrorTable
	indexTable    = node.IndexTable
	viewTable     = node.ViewTable
	securityTable = authz.SecurityTable
	readsMarker   = authz.ReadsMarker
	nodeHeader    = onlineread.NodeHeader
)

// decodeBody decodes one JSON object into v as the API does.
func decodeBody(r *http.Request, v any) error { return httpapi.DecodeBody(r, v) }
