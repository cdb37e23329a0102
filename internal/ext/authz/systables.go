package authz

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
)

// Writers says who writes one system table.
type Writers struct {
	// About says what the table holds (in refusals).
	About string
	// HubField, if set, is the fields a hub of id origin may set (and it
	// may not delete a record); nil: every field, and deletes.
	HubField func(origin hlc.NodeID, field string) bool
	// DeviceFields are the fields a device may set, each with the values
	// it may set them to; nil: none.
	DeviceFields map[string]func(crdt.Value) bool
}

// SystemTables is the one statement of who writes each system table (the
// assembly declares it). A hub may write every table listed; HubField
// narrows the fields it may set. A device may set only the DeviceFields,
// never delete a record. A system table not listed (one a newer version
// added) is written by hubs only.
type SystemTables map[string]Writers

// isSystemTable reports whether table is a system table.
func isSystemTable(table string) bool { return strings.HasPrefix(table, replication.SystemPrefix) }

// Refusal returns why w may not be written to a system table by its
// origin (a hub when hub), or "" if it may (or w is not to a system
// table).
func (t SystemTables) Refusal(w *crdt.Write, hub bool) string {
	if !isSystemTable(w.Table) {
		return ""
	}
	st, known := t[w.Table]
	who := "device"
	if hub {
		who = "hub"
	}
	switch {
	case hub && (!known || st.HubField == nil):
		return ""
	case hub:
		if w.Delete {
			return fmt.Sprintf("hub %s may not delete records of system table %s (%s)", w.Origin, w.Table, st.About)
		}
		var bad []string
		for _, f := range w.Fields {
			if !st.HubField(w.Origin, f.Name) {
				bad = append(bad, f.Name)
			}
		}
		if len(bad) == 0 {
			return ""
		}
		return fmt.Sprintf("hub %s may not write field(s) %s of system table %s (%s)", w.Origin, strings.Join(bad, ", "), w.Table, st.About)
	case !known:
		return fmt.Sprintf("%s %s may not write system table %s (hubs only)", who, w.Origin, w.Table)
	case w.Delete:
		return fmt.Sprintf("%s %s may not delete records of system table %s (%s)", who, w.Origin, w.Table, st.About)
	case len(st.DeviceFields) == 0:
		return fmt.Sprintf("%s %s may not write system table %s (%s; hubs only)", who, w.Origin, w.Table, st.About)
	}
	var bad []string
	for _, f := range w.Fields {
		if ok := st.DeviceFields[f.Name]; ok == nil || !ok(f.Value) {
			bad = append(bad, f.Name)
		}
	}
	if len(bad) == 0 && len(w.Fields) > 0 {
		return ""
	}
	sort.Strings(bad)
	allowed := make([]string, 0, len(st.DeviceFields))
	for f := range st.DeviceFields {
		allowed = append(allowed, f)
	}
	sort.Strings(allowed)
	return fmt.Sprintf("%s %s may not write field(s) %s of system table %s (%s; a device sets only %s)", who, w.Origin,
		strings.Join(bad, ", "), w.Table, st.About, strings.Join(allowed, ", "))
}

// Guard is the API's refusal of a write to a system table
// (403): only the agent's own code writes them.
func (t SystemTables) Guard(table string) error {
	if !isSystemTable(table) {
		return nil
	}
	about := "a table the agents keep"
	if st, ok := t[table]; ok {
		about = st.About
	}
	return &forbidden{fmt.Sprintf("table %s is a system table (%s): only replicad itself writes it, not the API", table, about)}
}

// forbidden is a 403 answer (its Status method).
type forbidden struct{ msg string }

func (e *forbidden) Error() string { return e.msg }

// Status is the HTTP status the error is answered with.
func (e *forbidden) Status() int { return http.StatusForbidden }

// Tables is the one statement of who writes each system table: those of
// the node and of this package, and extra, the tables other extensions
// own (each stating its own writers), which the assembly hands here.
//
// A hub (any hub: arbitrating or not) may write every table here; the
// grants narrow the fields it may set to its own. A device may set none
// of these, nor delete a record.
func Tables(extra SystemTables) SystemTables {
	t := SystemTables{
		node.PolicyTable: {About: "the table policies, published by the hubs from their --policy"},
		node.ErrorTable:  {About: "the sync errors a hub logged (arbiter, permissions), sent to the nodes they name"},
		GrantTable: {
			About: "the permission grants the hubs sign",
			// Each hub publishes its grants in its own field (publishGrants).
			HubField: func(origin hlc.NodeID, field string) bool { return field == GrantField(origin) },
		},
		SecurityTable:   {About: "whether the hubs enforce read permissions"},
		node.IndexTable: {About: "the secondary indexes the hubs declare, which every replica builds"},
		node.ViewTable:  {About: "the views the hubs declare, which every replica lists and runs"},
	}
	for table, w := range extra {
		t[table] = w
	}
	return t
}
