// Package source runs queries (package query) on the store: a Source on
// one snapshot of it.
package source

import (
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/store"
)

// Store is a query.Source on one snapshot of a store. Close it.
type Store struct {
	r *store.Reader
}

// Open takes a snapshot of st. The indexes it offers are those built
// when the snapshot was taken.
func Open(st *store.Store) (*Store, error) {
	r, err := st.NewReader()
	if err != nil {
		return nil, err
	}
	return &Store{r: r}, nil
}

// Close releases the snapshot.
func (s *Store) Close() error { return s.r.Close() }

// Indexes returns the built indexes of table.
func (s *Store) Indexes(table string) []query.Index {
	var out []query.Index
	for _, ix := range s.r.Indexes() {
		if ix.Table == table && ix.Built {
			out = append(out, query.Index{Name: ix.Name, Fields: ix.Fields})
		}
	}
	return out
}

// Get reads a record (not one out of scope).
func (s *Store) Get(table, id string) (*crdt.Record, bool, error) { return s.r.Get(table, id) }

// Scan reads a table's records in id order.
func (s *Store) Scan(table, after string, fn func(id string, rec *crdt.Record) bool) error {
	return s.r.Scan(table, after, fn)
}

// IndexScan reads an index's entries.
func (s *Store) IndexScan(name string, lower, upper []byte, reverse bool, fn func(tuple []byte, id string) bool) error {
	return s.r.IndexScan(name, lower, upper, reverse, fn)
}

// Run runs q on a snapshot of st.
func Run(st *store.Store, q query.Query, env query.Env) (*query.Result, error) {
	src, err := Open(st)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return query.Execute(src, q, env)
}
