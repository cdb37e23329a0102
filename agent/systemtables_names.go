package agent

import (
	"github.com/replicad/replicad/internal/node"
)

// The system tables the node owns (internal/node).
const (
	policyTable = node.PolicyTable
	errorTable  = node.ErrorTable
	indexTable  = node.IndexTable
	viewTable   = node.ViewTable
)
