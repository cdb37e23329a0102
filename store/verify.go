package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Verify checks the store's consistency on a snapshot: every record
// decodes and passes crdt's Record.Check; every log entry decodes and is
// at its key; for each origin, the holdings (stored, and in memory) are
// exactly the logged sequences plus the declared-empty ranges; each
// record's Applied vector is exactly, per origin, the highest logged write
// to it; every feed entry names a logged write and every logged write has
// one feed entry; each secondary index agrees with the records (see
// verifyIndexes); in an encrypted store, that every value opens with the
// key. It reads the whole store and keeps per-record state in
// memory: a tool for tests and operators, not for the hot path. The first
// problem is returned (ErrCorrupt for undecodable values, naming the key).
func (s *Store) Verify() error {
	if err := s.usable(); err != nil {
		return err
	}
	// Block writers so the in-memory holdings match the snapshot.
	s.mu.Lock()
	snap := s.db.NewSnapshot()
	mem := s.allHeld()
	s.mu.Unlock()
	defer snap.Close()

	iter := func(p byte, fn func(k, v []byte) error) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		var buf []byte
		for it.First(); it.Valid(); it.Next() {
			v, err := s.itValue(it, &buf)
			if err != nil {
				return err
			}
			if err := fn(it.Key(), v); err != nil {
				return err
			}
		}
		return it.Error()
	}

	if err := s.verifyAtRest(snap); err != nil {
		return err
	}

	// Log: per origin the held set, per record the max seq per origin.
	logged := map[hlc.NodeID]*Held{}
	perRec := map[string]crdt.VV{}
	type dot = crdt.Dot
	inLog := map[dot]bool{}
	if err := iter(pLog, func(k, v []byte) error {
		w, err := decodeLogEntry(k, v)
		if err != nil {
			return err
		}
		h := logged[w.Origin]
		if h == nil {
			h = &Held{}
			logged[w.Origin] = h
		}
		h.Add(w.Seq, w.Seq)
		rk := string(recordKey(nil, w.Table, w.ID))
		vv := perRec[rk]
		vv.Set(w.Dot())
		perRec[rk] = vv
		inLog[w.Dot()] = true
		return nil
	}); err != nil {
		return err
	}
	// Empty ranges (g) and ranges held through a transferred state (s,
	// state.go) are held with no log entry.
	for _, p := range []byte{pEmpty, pState} {
		if err := iter(p, func(k, v []byte) error {
			if len(k) != 17 || len(v) != 8 || be(v) < be(k[9:]) {
				return corruptf(k, "malformed empty range")
			}
			o := hlc.NodeID(be(k[1:9]))
			h := logged[o]
			if h == nil {
				h = &Held{}
				logged[o] = h
			}
			h.Add(be(k[9:]), be(v))
			return nil
		}); err != nil {
			return err
		}
	}
	stored := map[hlc.NodeID]Held{}
	if err := iter(pOrigin, func(k, v []byte) error {
		if len(k) != 9 {
			return corruptf(k, "holdings key of %d bytes", len(k))
		}
		h, err := decodeHeld(k, v)
		if err != nil {
			return err
		}
		stored[hlc.NodeID(be(k[1:]))] = h
		return nil
	}); err != nil {
		return err
	}
	for o, h := range logged {
		if !stored[o].Equal(*h) {
			return fmt.Errorf("%w: holdings of %v are %v, log and empty ranges hold %v", ErrCorrupt, o, stored[o], h)
		}
		if !mem[o].Equal(*h) {
			return fmt.Errorf("store: in-memory holdings of %v are %v, log holds %v", o, mem[o], h)
		}
	}
	for o, h := range stored {
		if logged[o] == nil && !h.Equal(Held{}) {
			return fmt.Errorf("%w: holdings of %v are %v, log holds nothing", ErrCorrupt, o, h)
		}
	}
	// A parked write is not held: a claim that holds its number drops it
	// (dropHeldParked), else it could never apply.
	if err := iter(pParked, func(k, v []byte) error {
		if len(k) != 17 {
			return corruptf(k, "parked key of %d bytes", len(k))
		}
		if o, seq := hlc.NodeID(be(k[1:9])), be(k[9:]); stored[o].Contains(seq) {
			return corruptf(k, "parked write %v:%d is held", o, seq)
		}
		return nil
	}); err != nil {
		return err
	}
	// Records purged (out of scope, state removed): the log may name them.
	purged := map[string]bool{}
	hiddenAny := map[string]bool{} // records hidden at some point may have lost merge marks to a purge
	if err := iter(pHidden, func(k, v []byte) error {
		if isPurgeMark(v) {
			purged[string(pRecord)+string(k[1:])] = true
		}
		hiddenAny[string(pRecord)+string(k[1:])] = true
		return nil
	}); err != nil {
		return err
	}
	// Records merged whole: their Applied may exceed the log.
	merged := map[string]crdt.VV{}
	if err := iter(pMerged, func(k, v []byte) error {
		vv, err := decodeVV(k, v)
		if err != nil {
			return err
		}
		merged[string(k[1:])] = vv
		return nil
	}); err != nil {
		return err
	}
	horizon, err := func() (crdt.VV, error) {
		v, c, err := s.getFrom(snap, metaKey(metaGC))
		if err != nil {
			return nil, nil // no horizon yet
		}
		defer c.Close()
		return decodeVV(metaKey(metaGC), v)
	}()
	if err != nil {
		return err
	}
	// Records.
	nrec := 0
	storedRec := map[string]bool{}
	if err := iter(pRecord, func(k, v []byte) error {
		if _, _, ok := splitName(k[1:]); !ok {
			return corruptf(k, "malformed record key")
		}
		rec, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		if msg := rec.Check(); msg != "" {
			return corruptf(k, "record check: %s", msg)
		}
		want := perRec[string(k)]
		if m, ok := merged[string(k[1:])]; ok {
			want = want.Clone()
			want.Join(m)
		}
		if hiddenAny[string(k)] && rec.Applied.LessEq(want) {
			// Hidden after a purge: its state is rebuilt from what came since.
		} else if recreated(rec.Applied, want, horizon) {
			// Collected, then written again: the collected writes stay
			// logged (and under the horizon), no longer applied.
		} else if !rec.Applied.Equal(want) {
			return fmt.Errorf("%w: record %s applied %v, log has %v", ErrCorrupt, FormatKey(k), rec.Applied, want)
		}
		nrec++
		storedRec[string(k)] = true
		return nil
	}); err != nil {
		return err
	}
	// Every record the log names is stored, unless purged; every stored
	// record is named by the log, a merge, or was hidden.
	for k, vv := range perRec {
		if !storedRec[k] && !purged[k] && !hiddenAny[k] && !(len(horizon) > 0 && vv.LessEq(horizon)) {
			return fmt.Errorf("%w: the log names record %s, which is not stored", ErrCorrupt, FormatKey([]byte(k)))
		}
	}
	for k := range storedRec {
		if _, ok := perRec[k]; !ok && !hiddenAny[k] {
			if _, ok := merged[k[1:]]; !ok {
				return fmt.Errorf("%w: record %s is stored but no write or merge names it", ErrCorrupt, FormatKey([]byte(k)))
			}
		}
	}
	_ = nrec
	// Feed.
	nfeed, nmerge := 0, 0
	var prev uint64
	if err := iter(pFeed, func(k, v []byte) error {
		if len(k) != 9 {
			return corruptf(k, "feed key of %d bytes", len(k))
		}
		var fv feedValue
		if err := decodeValue(k, v, &fv); err != nil {
			return err
		}
		n := be(k[1:])
		if n != prev+1 {
			return fmt.Errorf("%w: feed jumps from %d to %d", ErrCorrupt, prev, n)
		}
		prev = n
		if fv.Origin == 0 {
			// A whole-record merge (MergeRecord).
			rk := recordKey(nil, fv.Table, fv.ID)
			// Collection removes the mark (and the record, which later
			// writes may create again).
			collected := len(horizon) > 0
			if _, ok := merged[string(rk[1:])]; !ok && !purged[string(rk)] && !hiddenAny[string(rk)] && !collected {
				return fmt.Errorf("%w: feed entry %s names a merge of %s/%s, which has no merge mark", ErrCorrupt, FormatKey(k), fv.Table, fv.ID)
			}
			nmerge++
			nfeed++
			return nil
		}
		if !inLog[dot{Node: hlc.NodeID(fv.Origin), Seq: fv.Seq}] {
			return fmt.Errorf("%w: feed entry %s names %x:%d, not in the log", ErrCorrupt, FormatKey(k), fv.Origin, fv.Seq)
		}
		nfeed++
		return nil
	}); err != nil {
		return err
	}
	if nfeed-nmerge != len(inLog) {
		return fmt.Errorf("%w: %d feed entries for %d logged writes", ErrCorrupt, nfeed, len(inLog))
	}
	if err := s.verifyIndexes(snap); err != nil {
		return err
	}
	// Metadata.
	for _, name := range []string{metaMagic, metaFormat, metaNode, metaHLC} {
		_, c, err := s.getFrom(snap, metaKey(name))
		if err != nil {
			return fmt.Errorf("store: metadata %s: %w", FormatKey(metaKey(name)), err)
		}
		c.Close()
	}
	return nil
}

// CompactLog rewrites as Elided (crdt.Write.Elide) up to limit log entries
// (limit <= 0: no limit) whose values are all dead in the current record:
// the write's dot appears neither among the candidates of any field it set
// (for a delete: any field, or the live deletes) nor in the record's
// existence register. Elided entries stay in the log and are streamed like
// others (a receiver applies them as dead), so sequences overwritten since
// stay answerable. Writes that set no field (create-only) are not elided.
// It works in batches of 1,000 entries under the write mutex and returns
// how many entries it elided. It scans the whole log: run it in the
// background, rarely.
func (s *Store) CompactLog(limit int) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	elided := 0
	var next []byte = []byte{pLog}
	for {
		n, resume, err := s.compactChunk(next, 1000, limit-elided, limit > 0)
		elided += n
		if err != nil || resume == nil || (limit > 0 && elided >= limit) {
			return elided, err
		}
		next = resume
	}
}

func (s *Store) compactChunk(from []byte, chunk, left int, limited bool) (int, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, nil, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte{pLog + 1}})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()
	b := s.newBatch()
	defer b.close()
	recs := map[string]*crdt.Record{}
	n, seen := 0, 0
	var resume []byte
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		if seen == chunk || (limited && n >= left) {
			resume = append([]byte(nil), it.Key()...)
			break
		}
		seen++
		v, err := s.itValue(it, &buf)
		if err != nil {
			return 0, nil, err
		}
		w, err := decodeLogEntry(it.Key(), v)
		if err != nil {
			return 0, nil, err
		}
		if w.Elided || (!w.Delete && len(w.Fields) == 0) {
			continue
		}
		rk := string(recordKey(nil, w.Table, w.ID))
		rec := recs[rk]
		if rec == nil {
			rec, _, err = s.readRecord([]byte(rk))
			if err != nil {
				return 0, nil, err
			}
			recs[rk] = rec
		}
		if liveIn(rec, w) {
			continue
		}
		ev, err := crdt.AppendWrite(nil, w.Elide())
		if err != nil {
			return 0, nil, err
		}
		b.set(it.Key(), ev)
		n++
	}
	if err := it.Error(); err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, resume, nil
	}
	wait, err := s.submit(b)
	if err != nil {
		return 0, nil, err
	}
	// Holding the mutex through the sync is fine here: compaction is
	// background work.
	if err := wait(); err != nil {
		return 0, nil, err
	}
	return n, resume, nil
}

func hasDot(es []crdt.Entry, d crdt.Dot) bool {
	for _, e := range es {
		if e.Dot() == d {
			return true
		}
	}
	return false
}

// liveIn reports whether anything w wrote is still live in rec.
func liveIn(rec *crdt.Record, w *crdt.Write) bool {
	d := w.Dot()
	if hasDot(rec.Exist, d) {
		return true
	}
	if w.Delete {
		if hasDot(rec.Dels, d) {
			return true
		}
		for _, f := range rec.Fields {
			if hasDot(f.Cands, d) {
				return true
			}
		}
		return false
	}
	for _, f := range w.Fields {
		if hasDot(rec.Candidates(f.Name), d) {
			return true
		}
	}
	return false
}

// recreated reports whether a record's applied vector is what the log
// names of it but for writes under the horizon (collected), which a
// record written again after its collection no longer counts.
func recreated(applied, logged, horizon crdt.VV) bool {
	if len(horizon) == 0 || !applied.LessEq(logged) {
		return false
	}
	for _, d := range logged {
		if applied.Get(d.Node) != d.Seq && !horizon.Covers(d) {
			return false
		}
	}
	return true
}
