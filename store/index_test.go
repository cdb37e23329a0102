package store

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query/ordkey"
)

var indexSeed = flag.Uint64("index.seed", 0, "seed of TestIndexMaintained (0: from the time, printed)")

// randIndexOp makes one random change of any kind to s's records: local
// writes and deletes, remote batches from peers (concurrent writes,
// conflicts), whole-record merges, purges (in the batch that applied the
// record too), hides and unhides, tombstone collection, and index
// declarations, replacements and drops.
func indexValue(rng *rand.Rand) crdt.Value {
	switch rng.IntN(7) {
	case 0:
		return crdt.MustValue(rng.IntN(5))
	case 1:
		return crdt.MustValue(float64(rng.IntN(5)) + 0.5)
	case 2:
		return crdt.MustValue([]string{"a", "b", "", "a\x00b", "2026-01-02"}[rng.IntN(5)])
	case 3:
		return crdt.MustValue(rng.IntN(2) == 0)
	case 4:
		return crdt.MustValue(nil)
	case 5:
		return crdt.MustValue([]any{int64(rng.IntN(3))})
	}
	return crdt.MustValue(int64(1) << 60)
}

// retired: the records purged or collected so far, which no replica
// writes again (a purged record comes back whole through sync, and a
// record re-created after its collection is a known gap of the sync
// layer; neither is modelled here).
func randIndexOp(t *testing.T, s *Store, rng *rand.Rand, peers []*peer, sent []uint64, retired map[string]bool) {
	t.Helper()
	clock := fakeClock(t0 + 500)
	id := fmt.Sprint("r", rng.IntN(12))
	fields := func() []crdt.FieldValue {
		var fs []crdt.FieldValue
		for _, f := range []string{"a", "b", "c"} {
			if rng.IntN(2) == 0 {
				fs = append(fs, crdt.FieldValue{Name: f, Value: indexValue(rng)})
			}
		}
		return fs
	}
	op := rng.IntN(10)
	if retired[id] && op < 8 {
		return
	}
	switch {
	case op < 3: // local write or delete
		if s.Hidden("t", id) {
			return
		}
		del := rng.IntN(5) == 0
		var fs []crdt.FieldValue
		if !del {
			fs = fields()
		}
		if _, err := s.Write(clock, "t", id, fs, del); err != nil {
			t.Fatal(err)
		}
	case op < 6: // a peer writes, then its writes arrive (some purged in the same batch)
		i := rng.IntN(len(peers))
		p := peers[i]
		for n := 1 + rng.IntN(3); n > 0; n-- {
			del := rng.IntN(6) == 0
			pid := fmt.Sprint("r", rng.IntN(12))
			if retired[pid] {
				continue
			}
			var fs []crdt.FieldValue
			if !del {
				fs = fields()
			}
			if _, err := p.s.Write(p.clock, "t", pid, fs, del); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			return // not delivered yet: a later batch or a merge brings them
		}
		ws := p.stream(t, sent[i])
		sent[i] += uint64(len(ws))
		purge := rng.IntN(4) == 0
		if _, err := s.ApplyRemoteWith(clock, ws, nil, func(b *Batch, r *Result) error {
			if purge && len(ws) > 0 {
				w := ws[rng.IntN(len(ws))]
				b.Purge(w.Table, w.ID, nil)
				retired[w.ID] = true

			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	case op < 7: // a whole record from a peer
		p := peers[rng.IntN(len(peers))]
		rec, err := p.s.GetAny("t", id)
		if errors.Is(err, ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MergeRecord(clock, "t", id, rec); err != nil {
			t.Fatal(err)
		}
	case op < 8: // hide, show, purge
		hidden := s.Hidden("t", id)
		if err := s.Update(func(b *Batch) error {
			switch {
			case rng.IntN(3) == 0:
				b.Purge("t", id, nil)
				retired[id] = true
			case retired[id]:
			default:
				b.SetHidden("t", id, !hidden, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	case op < 9: // every replica gets every write, then each collects what all deleted
		all := []*Store{s}
		for _, p := range peers {
			all = append(all, p.s)
		}
		for round := 0; round < 2; round++ {
			for _, src := range all {
				for _, dst := range all {
					if src == dst {
						continue
					}
					for o := range src.Holdings() {
						var ws []*crdt.Write
						if err := src.Stream(o, dst.HeldOf(o).Contig, func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
							t.Fatal(err)
						}
						if len(ws) > 0 {
							if _, err := dst.ApplyRemote(clock, ws, nil); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
			}
		}
		for i, p := range peers {
			sent[i] = s.HeldOf(p.s.NodeID()).Contig
		}
		var h crdt.VV
		for o, held := range s.Holdings() {
			if held.Contig > 0 {
				h.Set(crdt.Dot{Node: o, Seq: held.Contig})
			}
		}
		stored := map[string]bool{}
		for i := 0; i < 12; i++ {
			rid := fmt.Sprint("r", i)
			for _, r := range all {
				if _, err := r.GetAny("t", rid); err == nil {
					stored[rid] = true
				}
			}
		}
		for _, r := range all {
			if _, err := r.RaiseGCHorizon(h); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Collect(0); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 12; i++ {
			rid := fmt.Sprint("r", i)
			for _, r := range all {
				if _, err := r.GetAny("t", rid); errors.Is(err, ErrNotFound) && stored[rid] {
					retired[rid] = true
				}
			}
		}
	default: // an index declared, replaced or dropped while writes go on
		switch rng.IntN(3) {
		case 0:
			if err := s.DeclareIndex(IndexDef{Name: "ix_c", Table: "t", Fields: []string{"c"}}); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := s.DeclareIndex(IndexDef{Name: "ix_c", Table: "t", Fields: []string{"c", "a"}}); err != nil {
				t.Fatal(err)
			}
		default:
			if err := s.DropIndex("ix_c"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkIndexScan checks that scanning index name returns exactly the
// existing, visible records of table by (tuple, id), forwards and
// backwards.
func checkIndexScan(t *testing.T, s *Store, def IndexDef) {
	t.Helper()
	r, err := s.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	type ent struct {
		key []byte
		id  string
	}
	var want []ent
	if err := r.Scan(def.Table, "", func(id string, rec *crdt.Record) bool {
		if rec.Exists() {
			var k []byte
			for _, f := range def.Fields {
				v, _ := rec.Get(f)
				k = ordkey.Append(k, v)
			}
			want = append(want, ent{k, id})
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool {
		if c := bytes.Compare(want[i].key, want[j].key); c != 0 {
			return c < 0
		}
		return want[i].id < want[j].id
	})
	for _, reverse := range []bool{false, true} {
		var got []ent
		if err := r.IndexScan(def.Name, nil, nil, reverse, func(tuple []byte, id string) bool {
			if !s.Hidden(def.Table, id) {
				got = append(got, ent{append([]byte(nil), tuple...), id})
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if reverse {
			for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
				got[i], got[j] = got[j], got[i]
			}
		}
		if len(got) != len(want) {
			t.Fatalf("index %s (reverse %v): %d entries, want %d", def.Name, reverse, len(got), len(want))
		}
		for i := range got {
			if got[i].id != want[i].id || !bytes.Equal(got[i].key, want[i].key) {
				t.Fatalf("index %s (reverse %v) entry %d: %s %x, want %s %x", def.Name, reverse, i, got[i].id, got[i].key, want[i].id, want[i].key)
			}
		}
	}
}

// TestIndexMaintained: after random changes of every kind, each index
// agrees with the records (Verify), scans return the records in order,
// and a reopened store has the same.
func TestIndexMaintained(t *testing.T) {
	seed := *indexSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-index.seed to repeat)", seed)
	for run := uint64(0); run < 8; run++ {
		rng := rand.New(rand.NewPCG(seed, run))
		fs := vfs.NewMem()
		s := mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true})
		peers := []*peer{newPeer(t, t0+1000), newPeer(t, t0+1000)}
		sent := make([]uint64, len(peers))
		ab := IndexDef{Name: "ix_ab", Table: "t", Fields: []string{"a", "b"}}
		declared := false
		retired := map[string]bool{}
		for step := 0; step < 150; step++ {
			if step == int(run)*15 { // some runs declare it on existing records
				if err := s.DeclareIndex(ab); err != nil {
					t.Fatal(err)
				}
				declared = true
			}
			randIndexOp(t, s, rng, peers, sent, retired)
			if step%25 == 0 {
				if err := s.Verify(); err != nil {
					t.Fatalf("seed %d run %d step %d: %v", seed, run, step, err)
				}
			}
		}
		if !declared {
			t.Fatal("index never declared")
		}
		if err := s.WaitIndexes(); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(); err != nil {
			t.Fatalf("seed %d run %d: %v", seed, run, err)
		}
		infos := s.Indexes()
		for _, ix := range infos {
			if !ix.Built {
				t.Fatalf("index %s not built after WaitIndexes", ix.Name)
			}
			checkIndexScan(t, s, ix.IndexDef)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true})
		if err := s.Verify(); err != nil {
			t.Fatalf("seed %d run %d reopened: %v", seed, run, err)
		}
		if got := s.Indexes(); len(got) != len(infos) {
			t.Fatalf("reopened: %d indexes, want %d", len(got), len(infos))
		}
		for _, ix := range s.Indexes() {
			checkIndexScan(t, s, ix.IndexDef)
		}
		s.Close()
	}
}

// TestIndexBuildResumes: an index declared on a store with records is
// built in the background in steps; closing the store in the middle
// leaves a build position from which the next open resumes, and the index
// is not reported built before every record is in it.
func TestIndexBuildResumes(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	const n = 3*indexChunk + 7
	for i := 0; i < n; i++ {
		if _, err := s.Write(clock, "t", fmt.Sprintf("r%05d", i), []crdt.FieldValue{fv("a", i%10)}, false); err != nil {
			t.Fatal(err)
		}
	}
	// Stop the background build at once, then run one step by hand.
	s.stopIndexBuilds()
	def := IndexDef{Name: "ix", Table: "t", Fields: []string{"a"}}
	if err := s.DeclareIndex(def); err != nil {
		t.Fatal(err)
	}
	if done, err := s.buildIndexStep(s.ix.get("ix"), indexChunk); err != nil || done {
		t.Fatalf("first step: done %v, %v", done, err)
	}
	info, _ := s.Index("ix")
	if info.Built || info.Indexed != indexChunk || info.After != fmt.Sprintf("r%05d", indexChunk-1) {
		t.Fatalf("after one step: %+v", info)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("verify mid-build: %v", err)
	}
	s.Close()
	s = mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true})
	defer s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ = s.Index("ix")
		if info.Built {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not built in 30 s: %+v", info)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if info.Indexed != n {
		t.Fatalf("built after indexing %d records, want %d (resumed from the stored position)", info.Indexed, n)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	checkIndexScan(t, s, def)
}

// TestIndexDefinitionErrors: bad definitions are refused and store
// nothing; an encrypted store refuses indexes.
func TestIndexDefinitionErrors(t *testing.T) {
	s := mustOpen(t, Options{Dir: "/db", FS: vfs.NewMem(), NoSync: true})
	defer s.Close()
	for _, d := range []IndexDef{
		{Name: "", Table: "t", Fields: []string{"a"}},
		{Name: "a b", Table: "t", Fields: []string{"a"}},
		{Name: "x", Table: "", Fields: []string{"a"}},
		{Name: "x", Table: "t"},
		{Name: "x", Table: "t", Fields: []string{"a", "a"}},
		{Name: "x", Table: "t", Fields: []string{""}},
		{Name: "x", Table: "t", Fields: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	} {
		if err := s.DeclareIndex(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("DeclareIndex(%+v) = %v, want ErrInvalid", d, err)
		}
	}
	if got := s.Indexes(); len(got) != 0 {
		t.Errorf("indexes after refused declarations: %v", got)
	}
	key := bytes.Repeat([]byte{7}, 32)
	e := mustOpen(t, Options{Dir: "/enc", FS: vfs.NewMem(), NoSync: true, EncryptionKey: key})
	defer e.Close()
	if err := e.DeclareIndex(IndexDef{Name: "x", Table: "t", Fields: []string{"a"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("encrypted store: DeclareIndex = %v, want ErrInvalid", err)
	}
}

// TestIndexDroppedWhenEncrypted: a plain store with an index, opened with
// an encryption key (migrated), drops the index and keeps no key of it.
func TestIndexDroppedWhenEncrypted(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	for i := 0; i < 20; i++ {
		if _, err := s.Write(clock, "t", fmt.Sprint("r", i), []crdt.FieldValue{fv("secret", fmt.Sprint("s3cr3t-", i))}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeclareIndex(IndexDef{Name: "by_secret", Table: "t", Fields: []string{"secret"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitIndexes(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e := mustOpen(t, Options{Dir: "/db", FS: fs, NoSync: true, EncryptionKey: bytes.Repeat([]byte{9}, 32)})
	defer e.Close()
	if got := e.Indexes(); len(got) != 0 {
		t.Fatalf("indexes after encryption: %v", got)
	}
	n := 0
	if err := e.scanKeys([]byte{pIndex}, func(k []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d index keys left", n)
	}
	if err := e.Verify(); err != nil {
		t.Fatal(err)
	}
}
