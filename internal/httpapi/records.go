package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Core is what the core routes need of the replica; the assembly
// implements it.
type Core interface {
	// With runs fn on the current replica's node (ErrResetting or
	// ErrRecovering while there is none).
	With(fn func(n *node.Node) (any, error)) (any, error)
	// GuardWrite refuses an API write to table (a system table's: 403).
	GuardWrite(table string) error
	// Reader returns the restricted node r reads for (nil: unrestricted).
	Reader(r *http.Request) Reader
}

// Reader is a node whose reads are restricted, as the API applies its
// limit to each record before the record's view is built.
type Reader interface {
	// Narrow returns the record as the reader may read it, false if it
	// may not read it.
	Narrow(table, id string, rec *crdt.Record) (*crdt.Record, bool)
	// String names the reader's node.
	String() string
}

// Records serves the record routes: PUT, GET and DELETE
// /v1/tables/{table}/records/{id}, GET /v1/tables/{table}/records.
type Records struct{ Core Core }

// Names returns the table and record id of r's path (400 when invalid);
// a route that writes names a table GuardWrite allows.
func (rs Records) Names(r *http.Request) (table, id string, err error) {
	return RecordNames(r, rs.Core.GuardWrite)
}

// RecordNames returns the table and record id of r's path (400 when
// invalid); a route that writes names a table guard allows.
func RecordNames(r *http.Request, guard func(table string) error) (table, id string, err error) {
	table, id = r.PathValue("table"), r.PathValue("id")
	if !store.ValidTable(table) {
		return "", "", Errorf(http.StatusBadRequest, "bad table name %q: 1-%d characters from [A-Za-z0-9_.-]", table, store.MaxTableLen)
	}
	if !store.ValidID(id) {
		return "", "", Errorf(http.StatusBadRequest, "bad record id %q: 1-%d bytes of UTF-8 without NUL", id, store.MaxIDLen)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Every route that writes a record names it here.
		if err := guard(table); err != nil {
			return "", "", err
		}
	}
	return table, id, nil
}

// PutBody is the body of PUT /v1/tables/{table}/records/{id}.
type PutBody struct {
	Fields map[string]json.RawMessage `json:"fields"`
}

// Values converts the body's JSON fields to field values (400 on an empty
// name or a value that does not convert).
func (b *PutBody) Values() ([]crdt.FieldValue, error) {
	fields := make([]crdt.FieldValue, 0, len(b.Fields))
	for name, raw := range b.Fields {
		if name == "" {
			return nil, Errorf(http.StatusBadRequest, "empty field name")
		}
		v, err := ExactValue(raw)
		if err != nil {
			return nil, Errorf(http.StatusBadRequest, "field %q: %v", name, err)
		}
		fields = append(fields, crdt.FieldValue{Name: name, Value: v})
	}
	return fields, nil
}

// Put writes a record's fields.
func (rs Records) Put(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := rs.Names(r)
	if err != nil {
		return nil, err
	}
	var body PutBody
	if err := DecodeBody(r, &body); err != nil {
		return nil, err
	}
	if body.Fields == nil {
		return nil, Errorf(http.StatusBadRequest, `body needs "fields": an object of field names to JSON values`)
	}
	fields, err := body.Values()
	if err != nil {
		return nil, err
	}
	return rs.Core.With(func(n *node.Node) (any, error) {
		if len(fields) == 0 {
			// No fields: an existing record is left as it is (nothing
			// written, nothing to sync); an absent or deleted one is
			// created empty below, like touching a file.
			if rec, err := n.Store().Get(table, id); err == nil && rec.Exists() {
				return n.View(table, id, rec), nil
			}
		}
		res, err := n.Write(table, id, fields, false, nil)
		if err != nil {
			return nil, err
		}
		return n.View(table, id, res.Record), nil
	})
}

// Existing returns a record that exists in st, or a 404 saying why not.
func Existing(st *store.Store, table, id string) (*crdt.Record, error) {
	rec, err := st.Get(table, id)
	switch {
	case errors.Is(err, store.ErrOutOfScope):
		return nil, Errorf(http.StatusNotFound, "record %s/%s is not in this device's offline profile", table, id)
	case errors.Is(err, store.ErrNotFound) || err == nil && !rec.Exists():
		return nil, Errorf(http.StatusNotFound, "record %s/%s not found", table, id)
	}
	return rec, err
}

// ReadView is the view of record table/id for rd (nil: unrestricted), and
// false if rd may not read the record.
func ReadView(n *node.Node, rd Reader, table, id string, rec *crdt.Record) (api.Record, bool) {
	if rd != nil {
		var ok bool
		if rec, ok = rd.Narrow(table, id, rec); !ok {
			return api.Record{}, false
		}
	}
	return n.View(table, id, rec), true
}

// Get answers a record.
func (rs Records) Get(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := rs.Names(r)
	if err != nil {
		return nil, err
	}
	rd := rs.Core.Reader(r)
	return rs.Core.With(func(n *node.Node) (any, error) {
		rec, err := Existing(n.Store(), table, id)
		if err != nil {
			return nil, err
		}
		v, ok := ReadView(n, rd, table, id, rec)
		if !ok {
			return nil, Errorf(http.StatusNotFound, "record %s: not found (node %s may not read it)", table, rd)
		}
		return v, nil
	})
}

// Delete deletes a record that exists.
func (rs Records) Delete(w http.ResponseWriter, r *http.Request) (any, error) {
	table, id, err := rs.Names(r)
	if err != nil {
		return nil, err
	}
	return rs.Core.With(func(n *node.Node) (any, error) {
		if _, err := Existing(n.Store(), table, id); err != nil {
			return nil, err
		}
		res, err := n.Write(table, id, nil, true, nil)
		if err != nil {
			return nil, err
		}
		return n.View(table, id, res.Record), nil
	})
}

// List answers a page of a table's records (?limit, ?after).
func (rs Records) List(w http.ResponseWriter, r *http.Request) (any, error) {
	table := r.PathValue("table")
	if !store.ValidTable(table) {
		return nil, Errorf(http.StatusBadRequest, "bad table name %q", table)
	}
	limit, err := IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
	if err != nil {
		return nil, err
	}
	after := r.URL.Query().Get("after")
	rd := rs.Core.Reader(r)
	return rs.Core.With(func(n *node.Node) (any, error) {
		out := []api.Record{}
		next := after
		for {
			page, nx, err := n.Store().Scan(table, next, limit-len(out))
			if err != nil {
				return nil, err
			}
			for _, e := range page {
				if !e.Record.Exists() {
					continue
				}
				if v, ok := ReadView(n, rd, table, e.ID, e.Record); ok {
					out = append(out, v)
				}
			}
			next = nx
			if next == "" || len(out) >= limit {
				break
			}
		}
		if len(out) < limit {
			next = ""
		} else if len(out) > 0 {
			next = out[len(out)-1].ID
		}
		return map[string]any{"records": out, "next": next}, nil
	})
}
