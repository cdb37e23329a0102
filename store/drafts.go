package store

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Drafts: u<table>\x00<id> holds a record's draft, field values written on
// this device only. A draft is not a write: it has no stamp, no sequence
// number, no log or feed entry and no holdings, so no sync session, feed
// reader or gossip push ever sees it. The daemon publishes it by making an
// ordinary local write of its fields (in whose batch TakeDraft removes
// it), or discards it.

// Draft is one record's unpublished field values.
type Draft struct {
	Table string `codec:"-"`
	ID    string `codec:"-"`
	// Fields maps a field name to its value (a crdt.Value).
	Fields map[string][]byte
	// Created and Updated are Unix milliseconds of the first and last
	// PutDraft.
	Created int64
	Updated int64
	// Rev counts the PutDrafts (from 1): a commit takes the draft only if
	// it is still the revision it read.
	Rev uint64
	// Base is the record's causal context (flattened node, seq pairs)
	// when the draft was started, nil if the record did not exist here.
	Base []uint64
}

// BaseVV returns Base as a version vector.
func (d *Draft) BaseVV() crdt.VV {
	var vv crdt.VV
	for i := 0; i+1 < len(d.Base); i += 2 {
		vv.Set(crdt.Dot{Node: hlc.NodeID(d.Base[i]), Seq: d.Base[i+1]})
	}
	return vv
}

// FieldValues returns the draft's fields as a write would set them,
// sorted by name.
func (d *Draft) FieldValues() []crdt.FieldValue {
	out := make([]crdt.FieldValue, 0, len(d.Fields))
	for name, v := range d.Fields {
		out = append(out, crdt.FieldValue{Name: name, Value: crdt.Value(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrDraftChanged is returned by TakeDraft when the draft is gone or was
// changed since it was read.
var ErrDraftChanged = errors.New("store: the draft changed since it was read")

func draftKey(table, id string) []byte {
	k := recordKey(nil, table, id)
	k[0] = pDraft
	return k
}

// PutDraft sets fields in the draft of table/id, creating it (with base
// as the record's context) if there is none; fields already in the draft
// and not named keep their values. It commits durably and returns the
// draft. Field names must be non-empty and unique, values valid.
func (s *Store) PutDraft(table, id string, fields []crdt.FieldValue, nowMs int64, base crdt.VV) (*Draft, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: a draft sets at least one field", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("%w: empty field name", ErrInvalid)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%w: field %q given twice", ErrInvalid, f.Name)
		}
		seen[f.Name] = true
		if f.Value.IsCleared() {
			return nil, fmt.Errorf("%w: field %q: a draft holds values, not deletions", ErrInvalid, f.Name)
		}
		if err := f.Value.Validate(); err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrInvalid, f.Name, err)
		}
	}
	k := draftKey(table, id)
	var out *Draft
	err := s.commitBook(func(b *Batch) error {
		d, err := s.readDraft(k)
		if errors.Is(err, ErrNotFound) {
			d = &Draft{Fields: map[string][]byte{}, Created: nowMs}
			if len(base) > 0 {
				d.Base = flatVV(base)
			}
		} else if err != nil {
			return err
		}
		for _, f := range fields {
			d.Fields[f.Name] = append([]byte(nil), f.Value...)
		}
		d.Updated = nowMs
		d.Rev++
		b.setEncoded(k, d)
		d.Table, d.ID = table, id
		out = d
		return b.err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetDraft returns the draft of table/id, or ErrNotFound.
func (s *Store) GetDraft(table, id string) (*Draft, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	d, err := s.readDraft(draftKey(table, id))
	if err != nil {
		return nil, err
	}
	d.Table, d.ID = table, id
	return d, nil
}

func (s *Store) readDraft(k []byte) (*Draft, error) {
	d := &Draft{}
	if err := s.getValue(k, d); err != nil {
		return nil, err
	}
	if d.Fields == nil {
		d.Fields = map[string][]byte{}
	}
	return d, nil
}

// ListDrafts returns up to limit drafts (limit <= 0: 100) in (table, id)
// order, of table only unless it is "", starting strictly after the draft
// (afterTable, afterID) when afterTable is not "".
func (s *Store) ListDrafts(table, afterTable, afterID string, limit int) ([]*Draft, error) {
	if limit <= 0 {
		limit = 100
	}
	if table != "" && !ValidTable(table) {
		return nil, checkName(table, "x")
	}
	prefix := []byte{pDraft}
	if table != "" {
		prefix = append(append(prefix, table...), 0)
	}
	lower, upper := prefix, prefixEnd(prefix)
	if afterTable != "" {
		if err := checkName(afterTable, afterID); err != nil {
			return nil, err
		}
		after := append(draftKey(afterTable, afterID), 0) // strictly after
		if bytes.Compare(after, lower) > 0 {
			lower = after
		}
	}
	var out []*Draft
	err := s.scanRange(lower, upper, func(k, val []byte) error {
		if len(out) == limit {
			return errStopScan
		}
		t, id, ok := splitName(k[1:])
		if !ok {
			return corruptf(k, "malformed draft key")
		}
		d := &Draft{}
		if err := decodeValue(k, val, d); err != nil {
			return err
		}
		if d.Fields == nil {
			d.Fields = map[string][]byte{}
		}
		d.Table, d.ID = t, id
		out = append(out, d)
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, err
}

// CountDrafts returns the number of drafts.
func (s *Store) CountDrafts() (int, error) {
	n := 0
	err := s.scanKeys([]byte{pDraft}, func([]byte) error { n++; return nil })
	return n, err
}

// DeleteDraft discards the draft of table/id durably and returns it;
// ErrNotFound if there is none.
func (s *Store) DeleteDraft(table, id string) (*Draft, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	k := draftKey(table, id)
	var out *Draft
	err := s.commitBook(func(b *Batch) error {
		d, err := s.readDraft(k)
		if err != nil {
			return err
		}
		d.Table, d.ID = table, id
		out = d
		b.del(k)
		return b.err
	})
	return out, err
}

// TakeDraft removes, in this batch, the draft of table/id if it is still
// at revision rev; otherwise it fails the batch with ErrDraftChanged. Use
// it in the hook of the write that publishes the draft (hooks run under
// the store's write mutex), so the write and the removal commit together
// and a draft is published at most once.
func (b *Batch) TakeDraft(table, id string, rev uint64) {
	if b.err != nil {
		return
	}
	k := draftKey(table, id)
	val, c, err := b.s.get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		b.err = fmt.Errorf("%w: %s/%s is no longer a draft", ErrDraftChanged, table, id)
		return
	}
	if err != nil {
		b.err = fmt.Errorf("store: read %s: %w", FormatKey(k), err)
		return
	}
	d := &Draft{}
	err = decodeValue(k, val, d)
	c.Close()
	if err != nil {
		b.err = err
		return
	}
	if d.Rev != rev {
		b.err = fmt.Errorf("%w: %s/%s is at revision %d, not %d", ErrDraftChanged, table, id, d.Rev, rev)
		return
	}
	b.del(k)
}
