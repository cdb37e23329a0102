package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query/ordkey"
)

// Secondary indexes: an index (name, table, fields) files each existing
// record of its table under the tuple of its fields' last-writer-wins
// values, encoded in the total order of package ordkey, then its id:
//
//	y\x01<name>                       the definition and its build state
//	y\x02<name>\x00<tuple><id>        empty: the entry
//	y\x03<name>\x00<id>               <tuple>: the record's entry (reverse)
//
// so that a range scan of y\x02<name>\x00<prefix> returns the records
// with those values in query order. An entry follows the record's state
// (hidden records keep theirs, as they keep their state: readers skip
// them); a deleted record has none.
//
// Every path that writes or removes a record's state keeps the entries of
// its table's indexes in the same batch (indexFields, next to
// indexConflict): local writes, remote batches, merges, purges, tombstone
// collection. The reverse entry names the tuple to remove when the values
// change. An index declared on a store with records is built in the
// background in chunks under the write mutex, each chunk's entries and its
// progress (the last id built) in one batch; a crash resumes from there.
// Writes meanwhile keep the entries of every record they touch. Until the
// build is done readers do not use the index (IndexInfo.Built).
const pIndex = 'y'

const (
	ixDef   = 1
	ixEntry = 2
	ixRev   = 3
)

// MaxIndexFields bounds the fields of one index.
const MaxIndexFields = 8

// indexChunk is how many records one build step indexes.
const indexChunk = 500

// IndexDef defines a secondary index: the records of Table by the values
// of Fields, in order.
type IndexDef struct {
	Name   string
	Table  string
	Fields []string
}

func (d IndexDef) equal(o IndexDef) bool {
	if d.Name != o.Name || d.Table != o.Table || len(d.Fields) != len(o.Fields) {
		return false
	}
	for i := range d.Fields {
		if d.Fields[i] != o.Fields[i] {
			return false
		}
	}
	return true
}

// Validate checks a definition: name and table as table names are, 1 to
// MaxIndexFields distinct non-empty fields without NUL.
func (d IndexDef) Validate() error {
	if !ValidTable(d.Name) {
		return fmt.Errorf("%w: index name %q (want 1-%d chars of [A-Za-z0-9_.-])", ErrInvalid, d.Name, MaxTableLen)
	}
	if !ValidTable(d.Table) {
		return fmt.Errorf("%w: index %s: table name %q", ErrInvalid, d.Name, d.Table)
	}
	if len(d.Fields) == 0 || len(d.Fields) > MaxIndexFields {
		return fmt.Errorf("%w: index %s: %d fields (want 1 to %d)", ErrInvalid, d.Name, len(d.Fields), MaxIndexFields)
	}
	seen := map[string]bool{}
	for _, f := range d.Fields {
		if f == "" || bytes.IndexByte([]byte(f), 0) >= 0 || len(f) > 1024 {
			return fmt.Errorf("%w: index %s: field name %q", ErrInvalid, d.Name, f)
		}
		if seen[f] {
			return fmt.Errorf("%w: index %s: field %q listed twice", ErrInvalid, d.Name, f)
		}
		seen[f] = true
	}
	return nil
}

// IndexInfo is an index's definition and build state.
type IndexInfo struct {
	IndexDef
	// Built: every record is indexed; queries may use the index.
	Built bool
	// Indexed counts the records the build has visited so far, and
	// After is the last id it visited ("" before the first).
	Indexed int64
	After   string
}

// indexState is the stored value of y\x01<name>.
type indexState struct {
	Name    string
	Table   string
	Fields  []string
	Built   bool
	After   string
	Indexed int64
}

// index is a declared index in memory.
type index struct {
	def     IndexDef
	entries []byte // y\x02<name>\x00
	rev     []byte // y\x03<name>\x00
	built   atomic.Bool
	dropped atomic.Bool
	mu      sync.Mutex // guards after and indexed
	after   string
	indexed int64
}

func newIndex(def IndexDef) *index {
	x := &index{def: def}
	x.entries = append(append([]byte{pIndex, ixEntry}, def.Name...), 0)
	x.rev = append(append([]byte{pIndex, ixRev}, def.Name...), 0)
	return x
}

func indexDefKey(name string) []byte { return append([]byte{pIndex, ixDef}, name...) }

func (x *index) entryKey(tuple []byte, id string) []byte {
	k := make([]byte, 0, len(x.entries)+len(tuple)+len(id))
	k = append(k, x.entries...)
	k = append(k, tuple...)
	return append(k, id...)
}

func (x *index) revKey(id string) []byte {
	return append(append([]byte(nil), x.rev...), id...)
}

// tuple returns the encoded values of the index's fields in rec's
// last-writer-wins view, or nil when rec does not exist (no entry).
func (x *index) tuple(rec *crdt.Record) []byte {
	if rec == nil || !rec.Exists() {
		return nil
	}
	var t []byte
	for _, f := range x.def.Fields {
		v, _ := rec.Get(f)
		t = ordkey.Append(t, v)
	}
	return t
}

// indexSet is the store's declared indexes. Changes are made under the
// store's write mutex (and mu), so every batch sees one set.
type indexSet struct {
	mu      sync.RWMutex
	byName  map[string]*index
	byTable map[string][]*index
	wg      sync.WaitGroup // builders
	stop    chan struct{}  // closed by Close
	// rev caches committed reverse entries (by reverse key), so that a
	// write to a record written recently reads no reverse entry from
	// Pebble; filled by publishIndexRev after a batch is handed to Pebble,
	// cleared when an index is dropped. Guarded by the store's mu.
	rev map[string]revState
}

// maxRevCache bounds the cached reverse entries (about 10 MB).
const maxRevCache = 64 << 10

// publishIndexRev adds the reverse entries a batch handed to Pebble set
// to the cache. Caller holds s.mu, after submit succeeded.
func (s *Store) publishIndexRev(b *Batch) {
	if len(b.ixRev) == 0 {
		return
	}
	c := s.ix.rev
	if c == nil {
		c = make(map[string]revState, len(b.ixRev))
		s.ix.rev = c
	}
	if len(c)+len(b.ixRev) > maxRevCache {
		drop := len(c) + len(b.ixRev) - maxRevCache + maxRevCache/8
		for k := range c { // an arbitrary eighth
			if drop == 0 {
				break
			}
			delete(c, k)
			drop--
		}
	}
	for k, v := range b.ixRev {
		c[k] = v
	}
}

func (ixs *indexSet) forTable(table []byte) []*index {
	ixs.mu.RLock()
	defer ixs.mu.RUnlock()
	if len(ixs.byTable) == 0 {
		return nil
	}
	return ixs.byTable[string(table)]
}

func (ixs *indexSet) add(x *index) {
	ixs.mu.Lock()
	defer ixs.mu.Unlock()
	if ixs.byName == nil {
		ixs.byName, ixs.byTable = map[string]*index{}, map[string][]*index{}
	}
	ixs.byName[x.def.Name] = x
	ixs.byTable[x.def.Table] = append(ixs.byTable[x.def.Table], x)
}

func (ixs *indexSet) remove(x *index) {
	ixs.mu.Lock()
	defer ixs.mu.Unlock()
	delete(ixs.byName, x.def.Name)
	var keep []*index
	for _, y := range ixs.byTable[x.def.Table] {
		if y != x {
			keep = append(keep, y)
		}
	}
	if len(keep) == 0 {
		delete(ixs.byTable, x.def.Table)
	} else {
		ixs.byTable[x.def.Table] = keep
	}
	x.dropped.Store(true)
}

func (ixs *indexSet) get(name string) *index {
	ixs.mu.RLock()
	defer ixs.mu.RUnlock()
	return ixs.byName[name]
}

// revState is a reverse entry as a batch left it.
type revState struct {
	tuple   []byte
	present bool
}

// indexFields keeps the entries of rkey's record in its table's indexes
// for its new state rec (nil: the state is removed). Caller holds s.mu
// (every batch is built under it).
func (b *Batch) indexFields(rkey []byte, rec *crdt.Record) {
	if b.err != nil {
		return
	}
	i := bytes.IndexByte(rkey, 0)
	if i < 1 {
		return
	}
	ixs := b.s.ix.forTable(rkey[1:i])
	if len(ixs) == 0 {
		return
	}
	id := string(rkey[i+1:])
	for _, x := range ixs {
		b.indexOne(x, id, x.tuple(rec), rec != nil && rec.Exists())
	}
}

// indexOne sets id's entry in x to tuple (present) or removes it.
func (b *Batch) indexOne(x *index, id string, tuple []byte, present bool) {
	rk := x.revKey(id)
	old, ok := b.ixRev[string(rk)]
	if !ok {
		old, ok = b.s.ix.rev[string(rk)]
	}
	if !ok {
		v, c, err := b.s.get(rk)
		switch {
		case err == nil:
			old = revState{tuple: append([]byte(nil), v...), present: true}
			c.Close()
		case errors.Is(err, pebble.ErrNotFound):
		default:
			b.err = fmt.Errorf("store: read %s: %w", FormatKey(rk), err)
			return
		}
	}
	if old.present == present && bytes.Equal(old.tuple, tuple) {
		return
	}
	if old.present {
		b.del(x.entryKey(old.tuple, id))
	}
	if present {
		b.set(x.entryKey(tuple, id), nil)
		b.set(rk, tuple)
	} else {
		b.del(rk)
	}
	if b.ixRev == nil {
		b.ixRev = map[string]revState{}
	}
	b.ixRev[string(rk)] = revState{tuple: tuple, present: present}
}

// DeclareIndex declares an index. A new one is built in the background
// from the records (IndexInfo reports its progress; queries use it once
// Built); the same definition again changes nothing; a different
// definition under a known name replaces it (its entries are rebuilt).
// An encrypted store refuses indexes: their keys would hold field values
// in the clear (a store encrypted after indexes were declared drops them
// at Open).
func (s *Store) DeclareIndex(def IndexDef) error {
	if err := def.Validate(); err != nil {
		return err
	}
	if s.ciph != nil {
		return fmt.Errorf("%w: index %s: the store is encrypted at rest, and index keys hold field values unencrypted", ErrInvalid, def.Name)
	}
	def.Fields = append([]string(nil), def.Fields...)
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	if x := s.ix.get(def.Name); x != nil {
		if x.def.equal(def) {
			s.mu.Unlock()
			return nil
		}
		if err := s.dropIndexLocked(x); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	b := s.newBatch()
	defer b.close()
	b.setEncoded(indexDefKey(def.Name), &indexState{Name: def.Name, Table: def.Table, Fields: def.Fields})
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	x := newIndex(def)
	s.ix.add(x)
	s.startIndexBuild(x)
	s.mu.Unlock()
	return wait()
}

// DropIndex removes an index and its entries (no error if it is not
// declared).
func (s *Store) DropIndex(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	x := s.ix.get(name)
	if x == nil {
		return nil
	}
	return s.dropIndexLocked(x)
}

func (s *Store) dropIndexLocked(x *index) error {
	b := s.newBatch()
	defer b.close()
	b.del(indexDefKey(x.def.Name))
	if b.err == nil {
		b.err = b.b.DeleteRange(x.entries, prefixEnd(x.entries), nil)
	}
	if b.err == nil {
		b.err = b.b.DeleteRange(x.rev, prefixEnd(x.rev), nil)
	}
	wait, err := s.submit(b)
	if err != nil {
		return err
	}
	s.ix.remove(x)
	s.ix.rev = nil
	return wait()
}

// Indexes returns the declared indexes, by name.
func (s *Store) Indexes() []IndexInfo {
	s.ix.mu.RLock()
	out := make([]IndexInfo, 0, len(s.ix.byName))
	for _, x := range s.ix.byName {
		out = append(out, x.info())
	}
	s.ix.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Index returns one declared index.
func (s *Store) Index(name string) (IndexInfo, bool) {
	x := s.ix.get(name)
	if x == nil {
		return IndexInfo{}, false
	}
	return x.info(), true
}

func (x *index) info() IndexInfo {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := x.def
	d.Fields = append([]string(nil), d.Fields...)
	return IndexInfo{IndexDef: d, Built: x.built.Load(), Indexed: x.indexed, After: x.after}
}

// loadIndexes reads the declared indexes at Open and resumes the builds
// a close or crash interrupted.
func (s *Store) loadIndexes() error {
	s.ix.stop = make(chan struct{})
	p := []byte{pIndex, ixDef}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []byte
	var pending []*index
	for it.First(); it.Valid(); it.Next() {
		v, err := s.itValue(it, &buf)
		if err != nil {
			return err
		}
		var st indexState
		if err := decodeValue(it.Key(), v, &st); err != nil {
			return err
		}
		def := IndexDef{Name: st.Name, Table: st.Table, Fields: st.Fields}
		if err := def.Validate(); err != nil || string(it.Key()[2:]) != st.Name {
			return corruptf(it.Key(), "index definition: %v", err)
		}
		x := newIndex(def)
		x.built.Store(st.Built)
		x.after, x.indexed = st.After, st.Indexed
		s.ix.add(x)
		if !st.Built {
			pending = append(pending, x)
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if s.ciph != nil && len(s.ix.byName) > 0 {
		return s.dropAllIndexes()
	}
	for _, x := range pending {
		s.startIndexBuild(x)
	}
	return nil
}

// dropAllIndexes removes every index of a store now encrypted at rest
// (declared while it was plain): their keys hold field values in the
// clear. The range is compacted at once so that no sstable keeps them.
// At Open (exclusive).
func (s *Store) dropAllIndexes() error {
	names := make([]string, 0, len(s.ix.byName))
	for n, x := range s.ix.byName {
		names = append(names, n)
		s.ix.remove(x)
	}
	sort.Strings(names)
	b := s.newBatch()
	if err := b.b.DeleteRange([]byte{pIndex}, []byte{pIndex + 1}, nil); err != nil {
		b.close()
		return err
	}
	if err := s.commitNow(b); err != nil {
		return err
	}
	if err := s.db.Compact(context.Background(), []byte{pIndex}, []byte{pIndex + 1}, true); err != nil {
		return fmt.Errorf("store: compact the dropped indexes: %w", err)
	}
	s.log.Warn("store: indexes dropped: the store is encrypted at rest and index keys hold field values in the clear", "indexes", names)
	return nil
}

// stopIndexBuilds stops the background builds and waits for them (Close,
// before it takes the write mutex).
func (s *Store) stopIndexBuilds() {
	s.ix.mu.Lock()
	if s.ix.stop != nil {
		select {
		case <-s.ix.stop:
		default:
			close(s.ix.stop)
		}
	}
	s.ix.mu.Unlock()
	s.ix.wg.Wait()
}

// startIndexBuild starts x's build. Caller holds s.mu or has exclusive
// access (Open).
func (s *Store) startIndexBuild(x *index) {
	s.ix.mu.Lock()
	stop := s.ix.stop
	if stop == nil {
		stop = make(chan struct{})
		s.ix.stop = stop
	}
	s.ix.mu.Unlock()
	s.ix.wg.Add(1)
	go func() {
		defer s.ix.wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			done, err := s.buildIndexStep(x, indexChunk)
			if err != nil {
				if s.usable() == nil {
					s.log.Error("store: index build", "index", x.def.Name, "error", err)
				}
				return
			}
			if done {
				return
			}
		}
	}()
}

// buildIndexStep indexes up to n records of x's table after its build
// position, in one batch with the new position; done once every record
// is indexed (or the index was dropped).
func (s *Store) buildIndexStep(x *index, n int) (done bool, err error) {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return true, err
	}
	if x.dropped.Load() || x.built.Load() {
		s.mu.Unlock()
		return true, nil
	}
	x.mu.Lock()
	after, indexed := x.after, x.indexed
	x.mu.Unlock()
	lower := recordKey(nil, x.def.Table, after)
	if after != "" {
		lower = append(lower, 0)
	}
	upper := append(append([]byte{pRecord}, x.def.Table...), 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		s.mu.Unlock()
		return true, err
	}
	b := s.newBatch()
	defer b.close()
	var buf []byte
	seen := 0
	last := after
	for it.First(); it.Valid() && seen < n; it.Next() {
		k := it.Key()
		_, id, ok := splitName(k[1:])
		if !ok {
			err = corruptf(k, "malformed record key")
			break
		}
		v, verr := s.itValue(it, &buf)
		if verr != nil {
			err = verr
			break
		}
		rec, derr := decodeRecord(k, v)
		if derr != nil {
			err = derr
			break
		}
		b.indexOne(x, id, x.tuple(rec), rec.Exists())
		seen++
		last = id
	}
	more := it.Valid()
	if ierr := it.Error(); err == nil {
		err = ierr
	}
	it.Close()
	if err != nil {
		s.mu.Unlock()
		return true, err
	}
	st := &indexState{Name: x.def.Name, Table: x.def.Table, Fields: x.def.Fields, After: last, Indexed: indexed + int64(seen), Built: !more}
	b.setEncoded(indexDefKey(x.def.Name), st)
	wait, err := s.submit(b)
	if err != nil {
		s.mu.Unlock()
		return true, err
	}
	// Visible to every read from here on: publish the progress before
	// another step can start.
	s.publishIndexRev(b)
	x.mu.Lock()
	x.after, x.indexed = st.After, st.Indexed
	x.mu.Unlock()
	x.built.Store(st.Built)
	s.mu.Unlock()
	if err := wait(); err != nil {
		return true, err
	}
	if st.Built {
		s.log.Info("store: index built", "index", x.def.Name, "records", st.Indexed)
	}
	return st.Built, nil
}

// WaitIndexes builds, in the caller's goroutine, what is left of every
// declared index (the background builds do the same; whichever runs a
// step first does it). Tests and tools that need the indexes usable now
// call it.
func (s *Store) WaitIndexes() error {
	s.ix.mu.RLock()
	var xs []*index
	for _, x := range s.ix.byName {
		xs = append(xs, x)
	}
	s.ix.mu.RUnlock()
	for _, x := range xs {
		for {
			done, err := s.buildIndexStep(x, indexChunk)
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
	return nil
}
