package node

import (
	"fmt"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
)

// The system tables (replication.SystemPrefix, "_replicad_") hold what the
// replicas themselves publish, and replicate to every replica in every
// scope. Every hub, the agent's and the embedded one (package replica),
// judges the remote writes to them by one statement (SystemTables) with
// one judge (SysJudge), applied by one enforcer (Enforcer). So the
// statement names every system table, also those an extension of the
// agent owns (their names are declared here and used there).
const (
	// GrantTable holds the hubs' signed permission grants (the agent's
	// authz): one record per rule, one field per signing hub (GrantField).
	GrantTable = "_replicad_grants"
	// SecurityTable says whether the hubs enforce read permissions (the
	// agent's authz).
	SecurityTable = "_replicad_security"
	// DuplicatesTable holds the suspected duplicates the arbitrating hub
	// flags (the agent's dedupe); any replica resolves one.
	DuplicatesTable = "_replicad_duplicates"
	// DuplicatesAbout says what DuplicatesTable holds.
	DuplicatesAbout = "the suspected duplicates the arbitrating hub flags; any replica resolves one through POST /v1/duplicates/{table}/{id}"
)

// GrantFieldPrefix starts the fields of GrantTable, one per signing hub.
const GrantFieldPrefix = "hub-"

// GrantField is the field of GrantTable where hub issuer publishes its
// grant.
func GrantField(issuer hlc.NodeID) string { return GrantFieldPrefix + issuer.String() }

// DuplicateDeviceFields are the fields of DuplicatesTable a device may
// set, each with the values it may set them to: resolving a flag, its
// status and how it was resolved, never the flag itself (table, id,
// with, keys, detected).
var DuplicateDeviceFields = map[string]func(crdt.Value) bool{
	"status": func(v crdt.Value) bool {
		x, err := v.Decode()
		s, _ := x.(string)
		return err == nil && (s == "kept" || s == "merged" || s == "discarded")
	},
	"resolution": func(crdt.Value) bool { return true },
}

// SysWriters says who writes one system table.
type SysWriters struct {
	// About says what the table holds (in refusals).
	About string
	// HubField, if set, is the fields a hub of id origin may set (and it
	// may not delete a record); nil: every field, and deletes.
	HubField func(origin hlc.NodeID, field string) bool
	// DeviceFields are the fields a device may set, each with the values
	// it may set them to; nil: none.
	DeviceFields map[string]func(crdt.Value) bool
}

// SystemTables says who writes each system table. A hub may write every
// table listed; HubField narrows the fields it may set. A device may set
// only the DeviceFields, never delete a record. A system table not listed
// (one a newer version added) is written by hubs only.
type SystemTables map[string]SysWriters

// systemTables is the one statement of who writes the system tables.
var systemTables = SystemTables{
	PolicyTable: {About: "the table policies, published by the hubs from their --policy"},
	ErrorTable:  {About: "the sync errors a hub logged (arbiter, permissions), sent to the nodes they name"},
	GrantTable: {
		About: "the permission grants the hubs sign",
		// Each hub publishes its grants in its own field.
		HubField: func(origin hlc.NodeID, field string) bool { return field == GrantField(origin) },
	},
	SecurityTable:   {About: "whether the hubs enforce read permissions"},
	IndexTable:      {About: "the secondary indexes the hubs declare, which every replica builds"},
	ViewTable:       {About: "the views the hubs declare, which every replica lists and runs"},
	DuplicatesTable: {About: DuplicatesAbout, DeviceFields: DuplicateDeviceFields},
}

// SysTables returns the one statement of who writes each system table,
// which every hub judges remote writes by (the agent's API guard reads
// it too). Do not modify it.
func SysTables() SystemTables { return systemTables }

// About says what system table holds ("a table the replicas keep" for
// one not listed).
func (t SystemTables) About(table string) string {
	if st, ok := t[table]; ok {
		return st.About
	}
	return "a table the replicas keep"
}

// Refusal returns why w may not be written to a system table by its
// origin (a hub when hub), or "" if it may (or w is not to a system
// table).
func (t SystemTables) Refusal(w *crdt.Write, hub bool) string {
	if !replication.IsSystemTable(w.Table) {
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
