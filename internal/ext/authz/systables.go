package authz

import (
	"fmt"
	"net/http"

	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// Who writes each system table is stated once, below the extensions
// (node.SysTables), so that an embedded hub (package replica) judges
// remote writes by the same rules: this package's tables (GrantTable,
// SecurityTable) are listed there with the node's and the other
// extensions'. A hub's SysJudge (node) is run by the Enforcer (node),
// wired here (Security.Wire) with the permission rules.

// Guard is the API's refusal of a write to a system table (403): only
// replicad's own code writes them.
func Guard(table string) error {
	if !replication.IsSystemTable(table) {
		return nil
	}
	return &forbidden{fmt.Sprintf("table %s is a system table (%s): only replicad itself writes it, not the API", table, node.SysTables().About(table))}
}

// forbidden is a 403 answer (its Status method).
type forbidden struct{ msg string }

func (e *forbidden) Error() string { return e.msg }

// Status is the HTTP status the error is answered with.
func (e *forbidden) Status() int { return http.StatusForbidden }
