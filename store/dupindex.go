package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The key index (d...) serves duplicate detection: the layer above
// declares key fields for a table and, in the batch of every write to
// it, files the record under a fixed-length digest of its key values, so
// that the records sharing key values are found without scanning the
// table. The store only keeps the entries; what a key is, and when two
// records are duplicates, is the caller's business.
//
//	d 0x01 <table> 0x00 <digest:32> <id>  → empty: id is filed under digest
//	d 0x02 <table> 0x00 <id>              → digest: where id is filed
//	d 0x03 <table>                        → opaque: the index's definition
//	d 0x04 <table> 0x00 <id>              → opaque: a pending flag about id
//
// The forward and reverse entries always change together (PutKeyIndex,
// DeleteKeyIndex). A pending flag is work for the layer above (publish a
// suspected duplicate), put in the batch that detected it and removed in
// the batch that carries it out, so a crash neither loses nor repeats it.

// KeyDigestLen is the length of a key index digest.
const KeyDigestLen = 32

const (
	dupForward = 1
	dupReverse = 2
	dupDef     = 3
	dupPending = 4
)

func dupTableKey(sub byte, table string) []byte {
	k := append([]byte{pDupKey, sub}, table...)
	return append(k, 0)
}

func dupForwardKey(table string, digest []byte, id string) []byte {
	k := dupTableKey(dupForward, table)
	k = append(k, digest...)
	return append(k, id...)
}

func dupReverseKey(table, id string) []byte {
	return append(dupTableKey(dupReverse, table), id...)
}

func dupDefKey(table string) []byte { return append([]byte{pDupKey, dupDef}, table...) }

func dupPendingKey(table, id string) []byte {
	return append(dupTableKey(dupPending, table), id...)
}

func checkDigest(d []byte) error {
	if len(d) != KeyDigestLen {
		return fmt.Errorf("%w: key digest of %d bytes (want %d)", ErrInvalid, len(d), KeyDigestLen)
	}
	return nil
}

// PutKeyIndex files table/id under digest in this batch. The caller
// removes its previous entry first (DeleteKeyIndex with the digest
// KeyIndexOf returned).
func (b *Batch) PutKeyIndex(table, id string, digest []byte) {
	if b.err != nil {
		return
	}
	if err := checkName(table, id); err != nil {
		b.err = err
		return
	}
	if err := checkDigest(digest); err != nil {
		b.err = err
		return
	}
	b.set(dupForwardKey(table, digest, id), nil)
	b.set(dupReverseKey(table, id), digest)
}

// DeleteKeyIndex removes table/id's entry under digest in this batch.
func (b *Batch) DeleteKeyIndex(table, id string, digest []byte) {
	if b.err != nil {
		return
	}
	if err := checkDigest(digest); err != nil {
		b.err = err
		return
	}
	b.del(dupForwardKey(table, digest, id))
	b.del(dupReverseKey(table, id))
}

// ClearKeyIndex removes table's whole key index and definition in this
// batch (pending flags stay).
func (b *Batch) ClearKeyIndex(table string) {
	if b.err != nil {
		return
	}
	for _, sub := range []byte{dupForward, dupReverse} {
		lo := dupTableKey(sub, table)
		if b.err = b.b.DeleteRange(lo, prefixEnd(lo), nil); b.err != nil {
			return
		}
	}
	b.del(dupDefKey(table))
}

// PutKeyIndexDef records table's index definition (opaque) in this batch.
func (b *Batch) PutKeyIndexDef(table string, def []byte) { b.set(dupDefKey(table), def) }

// KeyIndexDef returns table's index definition, if any.
func (s *Store) KeyIndexDef(table string) ([]byte, bool, error) {
	return s.getRaw(dupDefKey(table))
}

// KeyIndexOf returns the digest table/id is filed under, if any.
func (s *Store) KeyIndexOf(table, id string) ([]byte, bool, error) {
	if err := checkName(table, id); err != nil {
		return nil, false, err
	}
	return s.getRaw(dupReverseKey(table, id))
}

// KeyIndexIDs returns up to limit ids filed under digest in table, in id
// order (limit <= 0: all).
func (s *Store) KeyIndexIDs(table string, digest []byte, limit int) ([]string, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	prefix := append(dupTableKey(dupForward, table), digest...)
	var out []string
	err := s.scanKeys(prefix, func(k []byte) error {
		if limit > 0 && len(out) == limit {
			return errStopScan
		}
		out = append(out, string(k[len(prefix):]))
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, err
}

// PutDupPending records in this batch a pending flag (opaque) about
// table/id, replacing any earlier one.
func (b *Batch) PutDupPending(table, id string, v []byte) {
	if b.err != nil {
		return
	}
	if err := checkName(table, id); err != nil {
		b.err = err
		return
	}
	b.set(dupPendingKey(table, id), v)
}

// DeleteDupPending removes table/id's pending flag in this batch.
func (b *Batch) DeleteDupPending(table, id string) { b.del(dupPendingKey(table, id)) }

// DupPending is one pending flag.
type DupPending struct {
	Table, ID string
	Value     []byte
}

// DupPendings returns up to limit pending flags (limit <= 0: all), in key
// order. The values are the caller's.
func (s *Store) DupPendings(limit int) ([]DupPending, error) {
	var out []DupPending
	err := s.scanPrefix([]byte{pDupKey, dupPending}, func(k, v []byte) error {
		if limit > 0 && len(out) == limit {
			return errStopScan
		}
		table, id, ok := splitName(k[2:])
		if !ok {
			return corruptf(k, "malformed pending flag key")
		}
		out = append(out, DupPending{Table: table, ID: id, Value: append([]byte(nil), v...)})
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, err
}

// getRaw returns the value of k, if present (a copy).
func (s *Store) getRaw(k []byte) ([]byte, bool, error) {
	if err := s.usable(); err != nil {
		return nil, false, err
	}
	val, c, err := s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	defer c.Close()
	return append([]byte(nil), val...), true, nil
}

// KeyIndexTables returns the tables that have an index definition, in
// name order.
func (s *Store) KeyIndexTables() ([]string, error) {
	var out []string
	p := []byte{pDupKey, dupDef}
	err := s.scanKeys(p, func(k []byte) error {
		out = append(out, string(k[len(p):]))
		return nil
	})
	return out, err
}
