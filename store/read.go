package store

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// feedValue is the value of f<feed>: the write behind a feed entry.
type feedValue struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused // codec tag
	Origin  uint64
	Seq     uint64
	Table   string
	ID      string
}

// FeedEntry is one entry of the local change feed: a write applied here
// (local or remote), in application order.
type FeedEntry struct {
	Feed   uint64 // position in the feed, from 1, gapless
	Origin hlc.NodeID
	Seq    uint64
	Table  string
	ID     string
}

// RecordEntry is one record returned by Scan.
type RecordEntry struct {
	ID     string
	Record *crdt.Record
}

// Get returns the state of table/id. The record is the caller's. Errors:
// ErrNotFound (never written here), ErrInvalid, ErrCorrupt, ErrClosed,
// ErrFailed. A deleted record is returned (Record.Deleted reports it).
// Get may observe a write whose fsync is still in progress (not yet
// acknowledged to its writer).
func (s *Store) Get(table, id string) (*crdt.Record, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	if s.isHidden(table, id) {
		return nil, fmt.Errorf("%w: record %s/%q", ErrOutOfScope, table, id)
	}
	return s.GetAny(table, id)
}

// GetAny is Get including records hidden because they left this replica's
// scope (the sync layer serves and re-evaluates them).
func (s *Store) GetAny(table, id string) (*crdt.Record, error) {
	if err := checkName(table, id); err != nil {
		return nil, err
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	rec, found, err := s.readRecord(recordKey(nil, table, id))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: record %s/%q", ErrNotFound, table, id)
	}
	return rec, nil
}

// Hidden reports whether table/id is hidden (out of this replica's scope).
func (s *Store) Hidden(table, id string) bool { return s.isHidden(table, id) }

func (s *Store) isHidden(table, id string) bool {
	_, h := s.hiddenSkipped(table, id)
	return h
}

// HiddenSkipped returns, for a hidden record, the writes to it this
// replica marked held without applying them (they were outside its
// scope); ok is false if the record is not hidden.
func (s *Store) HiddenSkipped(table, id string) (skipped crdt.VV, ok bool) {
	vv, ok := s.hiddenSkipped(table, id)
	return vv.Clone(), ok
}

func (s *Store) hiddenSkipped(table, id string) (crdt.VV, bool) {
	s.hidmu.RLock()
	defer s.hidmu.RUnlock()
	if len(s.hidden) == 0 {
		return nil, false
	}
	vv, ok := s.hidden[table+"\x00"+id]
	return vv, ok
}

// applyHidden publishes a committed batch's hide and unhide marks.
func (s *Store) applyHidden(ops []hideOp) {
	if len(ops) == 0 {
		return
	}
	s.hidmu.Lock()
	for _, op := range ops {
		switch {
		case op.purge:
			s.hidden[op.key] = op.skipped
			s.purged[op.key] = true
		case op.hide:
			s.hidden[op.key] = op.skipped
			delete(s.purged, op.key)
		default:
			delete(s.hidden, op.key)
			delete(s.purged, op.key)
		}
	}
	s.hidmu.Unlock()
}

// Scan returns up to limit records of table with ids greater than after
// ("" for the start), in id order (bytewise), and the id to pass as after
// for the next page ("" when there are no more). limit <= 0 means 100.
// Hidden records (out of this replica's scope) are skipped.
// Records are the caller's. Deleted records are included. Each call is a
// consistent snapshot; pages of one scan may see later writes.
func (s *Store) Scan(table, after string, limit int) ([]RecordEntry, string, error) {
	var out []RecordEntry
	next, err := s.scanPage(table, after, limit, func(k []byte, id string, v []byte) error {
		rec, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		out = append(out, RecordEntry{ID: id, Record: rec})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// scanPage walks up to limit visible records of table with ids greater
// than after, in id order, handing each one's key, id and stored value
// (valid only during the call) to fn; it returns the id to pass as after
// for the next page ("" when there are no more). limit <= 0 means 100.
func (s *Store) scanPage(table, after string, limit int, fn func(k []byte, id string, v []byte) error) (string, error) {
	if !ValidTable(table) {
		return "", checkName(table, "x")
	}
	if err := s.usable(); err != nil {
		return "", err
	}
	if limit <= 0 {
		limit = 100
	}
	lower := recordKey(nil, table, after)
	if after != "" {
		lower = append(lower, 0) // strictly after
	}
	upper := append([]byte{pRecord}, table...)
	upper = append(upper, 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return "", err
	}
	defer it.Close()
	var buf []byte
	n, last := 0, ""
	for it.First(); it.Valid(); it.Next() {
		if n == limit {
			return last, nil
		}
		k := it.Key()
		_, id, ok := splitName(k[1:])
		if !ok {
			return "", corruptf(k, "malformed record key")
		}
		if s.isHidden(table, id) {
			continue
		}
		v, err := s.itValue(it, &buf)
		if err != nil {
			return "", err
		}
		if err := fn(k, id, v); err != nil {
			return "", err
		}
		n, last = n+1, id
	}
	return "", it.Error()
}

// Tables returns the names of the tables that have at least one record,
// sorted. Its cost grows with the number of tables (it skips from table to
// table).
func (s *Store) Tables() ([]string, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pRecord}, UpperBound: []byte{pRecord + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil, corruptf(k, "malformed record key")
		}
		t := string(k[1:i])
		out = append(out, t)
		next := append([]byte{pRecord}, t...)
		ok = it.SeekGE(append(next, 1))
	}
	return out, it.Error()
}

// Holdings returns, per origin, the sequence numbers this replica holds.
// It is a cheap copy of state kept in memory (loaded at open); the map and
// its Held values are the caller's. Of other origins it may include
// writes whose fsync is in progress (Stream yields them already).
//
// Of this node's own writes only the durable ones are reported: a local
// write is held (in memory) as soon as its batch is handed to Pebble, but
// Stream yields it only once it is durable, and a sync sender reports
// every held number Stream does not yield as empty. Reporting a write
// still waiting for its fsync would have the sender declare it empty to
// its peer, which would then hold it without ever receiving it.
func (s *Store) Holdings() map[hlc.NodeID]Held {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	out := make(map[hlc.NodeID]Held, len(s.held))
	for o, h := range s.held {
		out[o] = s.durableHeld(o, h)
	}
	return out
}

// allHeld is Holdings including this node's writes whose fsync is in
// progress (Verify compares it with a Pebble snapshot, which shows them).
func (s *Store) allHeld() map[hlc.NodeID]Held {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	out := make(map[hlc.NodeID]Held, len(s.held))
	for o, h := range s.held {
		out[o] = h.Clone()
	}
	return out
}

// durableHeld returns a copy of h, what this replica holds of origin o;
// for its own origin, only up to the last durable write (see Holdings).
func (s *Store) durableHeld(o hlc.NodeID, h *Held) Held {
	c := h.Clone()
	if o != s.node {
		return c
	}
	d := s.durableSeq.Load()
	if c.Contig > d {
		c.Contig = d
	}
	var rs []SeqRange
	for _, r := range c.Ranges {
		if r.Lo > d {
			break
		}
		r.Hi = min(r.Hi, d)
		rs = append(rs, r)
	}
	c.Ranges = rs
	return c
}

// HeldOf returns a copy of what this replica holds of origin.
func (s *Store) HeldOf(origin hlc.NodeID) Held {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	if h := s.held[origin]; h != nil {
		return s.durableHeld(origin, h)
	}
	return Held{}
}

// Stream calls fn, in sequence order, for every logged write of origin
// with a sequence number greater than after, stopping early when fn
// returns an error (which Stream returns). Writes are as applied here,
// some possibly Elided by CompactLog; each is fn's to keep. Its cost grows
// with the number of writes streamed, not with the size of the log
// (iterator bounds, no scan).
//
// Sequence numbers this replica holds (HeldOf(origin)) that Stream does
// not yield are held empty (declared empty by a sender): a sync sender
// reports them as empty ranges so that the receiver's gaps close. For
// this node's own origin Stream stops at the last durable write, so no
// write a crash could take back (and whose number would be reused)
// leaves the node.
//
// Stream holds a Pebble iterator (which pins memtables and files) while it
// runs: stream in bounded chunks (return an error from fn to stop, then
// resume with the last sequence seen). Errors: ErrCorrupt (naming the
// key), ErrClosed, ErrFailed, fn's error.
func (s *Store) Stream(origin hlc.NodeID, after uint64, fn func(*crdt.Write) error) error {
	return s.StreamTables(origin, after, nil, func(_ uint64, w *crdt.Write) error { return fn(w) })
}

// Feed returns up to limit feed entries after position after, in order;
// limit <= 0 means 100. Only durable entries are returned, so a consumer's
// cursor never points at an entry a crash could take back. The slice is
// the caller's.
func (s *Store) Feed(after uint64, limit int) ([]FeedEntry, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	head := s.durableFeed.Load()
	if after >= head {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: feedKey(nil, after+1), UpperBound: feedKey(nil, head+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []FeedEntry
	var buf []byte
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return nil, corruptf(k, "feed key of %d bytes", len(k))
		}
		raw, err := s.itValue(it, &buf)
		if err != nil {
			return nil, err
		}
		var v feedValue
		if err := decodeValue(k, raw, &v); err != nil {
			return nil, err
		}
		out = append(out, FeedEntry{Feed: be(k[1:]), Origin: hlc.NodeID(v.Origin), Seq: v.Seq, Table: v.Table, ID: v.ID})
	}
	return out, it.Error()
}

// FeedHead returns the position of the last durable feed entry (0 if
// none).
func (s *Store) FeedHead() uint64 { return s.durableFeed.Load() }

// ListHidden returns up to limit hidden records (out of this replica's
// scope) whose state is still kept, as table, id pairs, in key order.
// limit <= 0 means all.
func (s *Store) ListHidden(limit int) [][2]string {
	s.hidmu.RLock()
	keys := make([]string, 0, len(s.hidden))
	for k := range s.hidden {
		if !s.purged[k] {
			keys = append(keys, k)
		}
	}
	s.hidmu.RUnlock()
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		t, id, _ := strings.Cut(k, "\x00")
		out = append(out, [2]string{t, id})
	}
	return out
}
