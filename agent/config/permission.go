package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Permission is one permission rule of the config file: the node ids (or
// id prefixes, "HEX/BITS" as `replicad tls cert create` prints them) it
// applies to, and what those nodes may write.
//
//	permission "technicians" {
//	  nodes = ["a1b2c3d400000000/32"]
//	  write = ["jobs:status", "jobs:notes", "timesheets"]
//	  read  = ["jobs", "timesheets", "customers:name"]
//	}
//
// A write entry "TABLE" allows every field of the table and deletes;
// "TABLE:FIELD" allows setting that field (not deleting the record, which
// clears every field). A node matching no rule is not restricted; a node
// matching several may write what any of them allows.
//
// Read lists, with the same syntax, what the nodes may read: "TABLE" is
// every field of the table, "TABLE:FIELD" one field (the record's
// existence comes with any field). An empty Read (no read key) leaves
// reads unrestricted; the system tables (_replicad_*) are always readable.
type Permission struct {
	Name  string
	Nodes []string
	Write []string
	Read  []string
	// ReadSet tells an absent read key from an empty list (read = [] lets
	// the nodes read only the system tables).
	ReadSet bool
}

// permBlock is a permission block of the config file.
type permBlock struct {
	Name  string    `hcl:"name,label"`
	Nodes []string  `hcl:"nodes"`
	Write []string  `hcl:"write,optional"`
	Read  *[]string `hcl:"read,optional"`
}

// NodeMatch is a node id with the number of leading bits that must match.
type NodeMatch struct {
	ID   uint64
	Bits int
}

// Matches reports whether n is m (its leading bits).
func (m NodeMatch) Matches(n hlc.NodeID) bool {
	if m.Bits >= 64 {
		return uint64(n) == m.ID
	}
	mask := ^uint64(0) << (64 - m.Bits)
	return uint64(n)&mask == m.ID&mask
}

// ParseNodeMatch parses a node id (hex) or ID/BITS.
func ParseNodeMatch(s string) (NodeMatch, error) {
	hexID, bits, hasBits := strings.Cut(s, "/")
	id, err := strconv.ParseUint(hexID, 16, 64)
	if err != nil || id == 0 || len(hexID) > 16 {
		return NodeMatch{}, fmt.Errorf("node %q: want a node id (hex) or ID/BITS", s)
	}
	m := NodeMatch{ID: id, Bits: 64}
	if hasBits {
		b, err := strconv.Atoi(bits)
		if err != nil || b < 1 || b > 64 {
			return NodeMatch{}, fmt.Errorf("node %q: BITS must be 1-64", s)
		}
		m.Bits = b
	}
	return m, nil
}

// CheckPermissions checks the permission rules: each names at least one
// node, every node is a node id or ID/BITS, every write and read entry is
// TABLE or TABLE:FIELD.
func CheckPermissions(ps []Permission) error {
	for _, p := range ps {
		if len(p.Nodes) == 0 {
			return keyErr("permission", "%q: nodes must list at least one node id", p.Name)
		}
		for _, n := range p.Nodes {
			if _, err := ParseNodeMatch(n); err != nil {
				return keyErr("permission", "%q: %v", p.Name, err)
			}
		}
		if err := AddTableFields(p.Write, map[string]bool{}, map[string]map[string]bool{}); err != nil {
			return keyErr("permission", "%q: write %v", p.Name, err)
		}
		if err := AddTableFields(p.Read, map[string]bool{}, map[string]map[string]bool{}); err != nil {
			return keyErr("permission", "%q: read %v", p.Name, err)
		}
	}
	return nil
}

// AddTableFields adds a rule's list of "TABLE" (every field) and
// "TABLE:FIELD" entries to tables and fields.
func AddTableFields(list []string, tables map[string]bool, fields map[string]map[string]bool) error {
	for _, e := range list {
		table, field, hasField := strings.Cut(e, ":")
		if !store.ValidTable(table) || hasField && field == "" {
			return fmt.Errorf("%q: want TABLE or TABLE:FIELD", e)
		}
		if !hasField {
			tables[table] = true
			continue
		}
		if fields[table] == nil {
			fields[table] = map[string]bool{}
		}
		fields[table][field] = true
	}
	return nil
}
