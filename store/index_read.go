package store

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query/ordkey"
)

// Reader reads records and index entries on one consistent snapshot of
// the store (a query's pages each use one). Records out of this
// replica's scope (hidden) are left out, as by Get and Scan. Close it.
type Reader struct {
	s     *Store
	snap  *pebble.Snapshot
	buf   []byte
	it    *pebble.Iterator // Get's
	kbuf  []byte
	ixs   []*index    // declared when the snapshot was taken
	infos []IndexInfo // and their state then
}

// NewReader returns a Reader on the store's current state, with the
// indexes declared in it (taken together under the write mutex, so that
// an index reported built has every entry in the snapshot).
func (s *Store) NewReader() (*Reader, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := &Reader{s: s, snap: s.db.NewSnapshot()}
	s.ix.mu.RLock()
	for _, x := range s.ix.byName {
		r.ixs = append(r.ixs, x)
		r.infos = append(r.infos, x.info())
	}
	s.ix.mu.RUnlock()
	s.mu.Unlock()
	sort.Slice(r.infos, func(i, j int) bool { return r.infos[i].Name < r.infos[j].Name })
	return r, nil
}

// Indexes returns the indexes declared when the Reader was made, with
// their build state then: a built one has all its entries in the
// snapshot.
func (r *Reader) Indexes() []IndexInfo { return r.infos }

// Close releases the snapshot.
func (r *Reader) Close() error {
	if r.it != nil {
		r.it.Close()
	}
	return r.snap.Close()
}

// Get returns table/id's state and whether it is stored and in scope
// (deleted records are returned: Record.Exists tells).
func (r *Reader) Get(table, id string) (*crdt.Record, bool, error) {
	if err := checkName(table, id); err != nil {
		return nil, false, err
	}
	if r.s.isHidden(table, id) {
		return nil, false, nil
	}
	// One iterator for every Get of the reader: the records a query
	// reads through an index are often near each other, and a seek from
	// the last position is cheaper than a fresh lookup.
	r.kbuf = recordKey(r.kbuf[:0], table, id)
	if r.it == nil {
		it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: []byte{pRecord}, UpperBound: []byte{pRecord + 1}})
		if err != nil {
			return nil, false, err
		}
		r.it = it
	}
	if !r.it.SeekGE(r.kbuf) || !bytes.Equal(r.it.Key(), r.kbuf) {
		return nil, false, r.it.Error()
	}
	v, err := r.s.itValue(r.it, &r.buf)
	if err != nil {
		return nil, false, err
	}
	rec, err := decodeRecord(r.kbuf, v)
	if err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

// Scan calls fn with each record of table whose id is greater than after
// ("" for the start), in id order (bytewise), hidden ones left out, until
// fn returns false. Deleted records are included.
func (r *Reader) Scan(table, after string, fn func(id string, rec *crdt.Record) bool) error {
	if !ValidTable(table) {
		return checkName(table, "x")
	}
	lower := recordKey(nil, table, after)
	if after != "" {
		lower = append(lower, 0)
	}
	upper := append(append([]byte{pRecord}, table...), 1)
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		id := string(k[len(table)+2:])
		if r.s.isHidden(table, id) {
			continue
		}
		v, err := r.s.itValue(it, &r.buf)
		if err != nil {
			return err
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		if !fn(id, rec) {
			break
		}
	}
	return it.Error()
}

// IndexScan calls fn with the entries of index name whose tuple (the
// encoded values of its fields, package ordkey, then the id) is in
// [lower, upper) (nil: unbounded), in key order or, with reverse, in the
// reverse order, until fn returns false. tuple and id are valid during
// the call only. Entries of hidden records are included (the caller
// reads the record with Get, which leaves them out).
func (r *Reader) IndexScan(name string, lower, upper []byte, reverse bool, fn func(tuple []byte, id string) bool) error {
	var x *index
	for _, y := range r.ixs {
		if y.def.Name == name {
			x = y
		}
	}
	if x == nil {
		return fmt.Errorf("%w: no index %q", ErrNotFound, name)
	}
	lo := append(append([]byte(nil), x.entries...), lower...)
	var hi []byte
	if upper != nil {
		hi = append(append([]byte(nil), x.entries...), upper...)
	} else {
		hi = prefixEnd(x.entries)
	}
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	n := len(x.def.Fields)
	step := it.Next
	ok := it.First()
	if reverse {
		step, ok = it.Prev, it.Last()
	}
	for ; ok; ok = step() {
		k := it.Key()[len(x.entries):]
		l := ordkey.TupleLen(k, n)
		if l < 0 {
			return corruptf(it.Key(), "malformed index entry")
		}
		if !fn(k[:l], string(k[l:])) {
			break
		}
	}
	return it.Error()
}

// verifyIndexes checks, on snap, that each index agrees with the records:
// every entry has its reverse entry and the other way round, each entry's
// tuple is the one the record's state gives, and every existing record
// has its entry (for an index being built: every one up to the build
// position).
func (s *Store) verifyIndexes(snap *pebble.Snapshot) error {
	p := []byte{pIndex, ixDef}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	var states []indexState
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		v, err := s.itValue(it, &buf)
		if err != nil {
			it.Close()
			return err
		}
		var st indexState
		if err := decodeValue(it.Key(), v, &st); err != nil {
			it.Close()
			return err
		}
		states = append(states, st)
	}
	if err := it.Close(); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, st := range states {
		names[st.Name] = true
		if err := s.verifyIndex(snap, st); err != nil {
			return err
		}
	}
	// No entries of an index that is not declared.
	for _, kind := range []byte{ixEntry, ixRev} {
		p := []byte{pIndex, kind}
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()[2:]
			i := bytes.IndexByte(k, 0)
			if i < 0 || !names[string(k[:i])] {
				err := corruptf(it.Key(), "index entry of an index that is not declared")
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) verifyIndex(snap *pebble.Snapshot, st indexState) error {
	x := newIndex(IndexDef{Name: st.Name, Table: st.Table, Fields: st.Fields})
	// Reverse entries: id -> tuple.
	rev := map[string][]byte{}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: x.rev, UpperBound: prefixEnd(x.rev)})
	if err != nil {
		return err
	}
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		v, err := s.itValue(it, &buf)
		if err != nil {
			it.Close()
			return err
		}
		rev[string(it.Key()[len(x.rev):])] = append([]byte(nil), v...)
	}
	if err := it.Close(); err != nil {
		return err
	}
	// Entries: each matches its reverse entry, once.
	nent := 0
	it, err = snap.NewIter(&pebble.IterOptions{LowerBound: x.entries, UpperBound: prefixEnd(x.entries)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(x.entries):]
		l := ordkey.TupleLen(k, len(x.def.Fields))
		if l < 0 {
			err := corruptf(it.Key(), "malformed index entry")
			it.Close()
			return err
		}
		if t, ok := rev[string(k[l:])]; !ok || !bytes.Equal(t, k[:l]) {
			err := fmt.Errorf("%w: index %s: entry %s has no matching reverse entry", ErrCorrupt, x.def.Name, FormatKey(it.Key()))
			it.Close()
			return err
		}
		nent++
	}
	if err := it.Close(); err != nil {
		return err
	}
	if nent != len(rev) {
		return fmt.Errorf("%w: index %s: %d entries for %d reverse entries", ErrCorrupt, x.def.Name, nent, len(rev))
	}
	// Records: each existing one (up to the build position) has the
	// entry its state gives; no entry names a record that does not
	// exist.
	lo := recordKey(nil, x.def.Table, "")
	it, err = snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: append(append([]byte{pRecord}, x.def.Table...), 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	seen := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		id := string(k[len(lo):])
		v, err := s.itValue(it, &buf)
		if err != nil {
			return err
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		want := x.tuple(rec)
		got, has := rev[id]
		covered := st.Built || id <= st.After
		switch {
		case rec.Exists() && has && !bytes.Equal(got, want):
			return fmt.Errorf("%w: index %s: record %s/%s is filed under %x, its values give %x", ErrCorrupt, x.def.Name, x.def.Table, id, got, want)
		case rec.Exists() && !has && covered:
			return fmt.Errorf("%w: index %s: record %s/%s has no entry", ErrCorrupt, x.def.Name, x.def.Table, id)
		case !rec.Exists() && has:
			return fmt.Errorf("%w: index %s: deleted record %s/%s has an entry", ErrCorrupt, x.def.Name, x.def.Table, id)
		}
		if has {
			seen++
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if seen != len(rev) {
		return fmt.Errorf("%w: index %s: %d entries name records that are not stored", ErrCorrupt, x.def.Name, len(rev)-seen)
	}
	return nil
}
