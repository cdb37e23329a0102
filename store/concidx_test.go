package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

// conflictsByScan lists the records of s with a conflict, reading every
// record: what the conflict index must name.
func conflictsByScan(t *testing.T, s *Store) []ConflictRef {
	t.Helper()
	tables, err := s.Tables()
	if err != nil {
		t.Fatal(err)
	}
	var out []ConflictRef
	for _, tb := range tables {
		after := ""
		for {
			page, next, err := s.Scan(tb, after, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				if e.Record.HasConflict() {
					out = append(out, ConflictRef{tb, e.ID})
				}
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return out
}

func conflictsByIndex(t *testing.T, s *Store, page int) []ConflictRef {
	t.Helper()
	var out []ConflictRef
	at, ai := "", ""
	for {
		refs, err := s.ConflictedRecords(at, ai, page)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, refs...)
		if len(refs) < page {
			return out
		}
		at, ai = refs[len(refs)-1].Table, refs[len(refs)-1].ID
	}
}

// TestConflictIndexRandom: local writes, remote writes from two peers
// that write concurrently and sometimes catch up, whole-record merges and
// deletes; after every step the conflict index names exactly the records
// with a conflict, and after a reopen too. Replay with the printed seed.
func TestConflictIndexRandom(t *testing.T) {
	for run := range 20 {
		seed := rand.Uint64()
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("seed %d", seed)
				}
			}()
			rng := rand.New(rand.NewPCG(seed, uint64(run)))
			fs := vfs.NewMem()
			s := mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
			defer func() { s.Close() }()
			clock := fakeClock(t0)
			peers := []*peer{newPeer(t, t0+5), newPeer(t, t0+9)}
			sent := make([]uint64, len(peers))    // S has applied peer i's writes up to sent[i]
			learned := make([]uint64, len(peers)) // peer i has applied S's writes up to learned[i]
			const nrec = 6
			tables := []string{"jobs", "notes"}
			for step := range 300 {
				id := fmt.Sprintf("r%d", rng.IntN(nrec))
				tb := tables[rng.IntN(len(tables))]
				switch op := rng.IntN(10); {
				case op < 3: // local write or delete
					del := rng.IntN(8) == 0
					var fields []crdt.FieldValue
					if !del {
						fields = []crdt.FieldValue{fv(fmt.Sprintf("f%d", rng.IntN(3)), rng.IntN(100))}
					}
					if _, err := s.Write(clock, tb, id, fields, del); err != nil {
						t.Fatal(err)
					}
				case op < 6: // a peer writes (concurrently with S's writes it lacks)
					p := peers[rng.IntN(len(peers))]
					if rng.IntN(8) == 0 {
						if _, err := p.s.Write(p.clock, tb, id, nil, true); err != nil {
							t.Fatal(err)
						}
					} else {
						p.write(t, tb, id, fv(fmt.Sprintf("f%d", rng.IntN(3)), rng.IntN(100)))
					}
				case op < 8: // S receives a peer's new writes
					i := rng.IntN(len(peers))
					ws := peers[i].stream(t, sent[i])
					if len(ws) == 0 {
						continue
					}
					if _, err := s.ApplyRemote(clock, ws, nil); err != nil {
						t.Fatal(err)
					}
					sent[i] = ws[len(ws)-1].Seq
				case op < 9: // a peer catches up with S (its next writes supersede)
					i := rng.IntN(len(peers))
					var ws []*crdt.Write
					if err := s.Stream(s.NodeID(), learned[i], func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
						t.Fatal(err)
					}
					if len(ws) == 0 {
						continue
					}
					if _, err := peers[i].s.ApplyRemote(peers[i].clock, ws, nil); err != nil {
						t.Fatal(err)
					}
					learned[i] = ws[len(ws)-1].Seq
				default: // S merges a peer's whole record
					p := peers[rng.IntN(len(peers))]
					rec, err := p.s.Get(tb, id)
					if err != nil {
						continue
					}
					if _, err := s.MergeRecord(clock, tb, id, rec); err != nil {
						t.Fatal(err)
					}
				}
				want := conflictsByScan(t, s)
				if got := conflictsByIndex(t, s, 1+rng.IntN(4)); !slices.Equal(got, want) {
					t.Fatalf("step %d: index %v, records with a conflict %v", step, got, want)
				}
			}
			want := conflictsByScan(t, s)
			if len(want) == 0 {
				t.Logf("no conflicts at the end")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
			if got := conflictsByIndex(t, s, 100); !slices.Equal(got, want) {
				t.Fatalf("after reopen: index %v, want %v", got, want)
			}
		})
	}
}

// TestConflictIndexBuilt: a store whose index is missing or incomplete
// (created before it, or a build a crash interrupted: no completion
// mark) builds it at open.
func TestConflictIndexBuilt(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	p := newPeer(t, t0+3)
	for i := range 50 {
		id := fmt.Sprintf("r%02d", i)
		if _, err := s.Write(clock, "jobs", id, []crdt.FieldValue{fv("a", i)}, false); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // concurrent with S's write
			if _, err := s.ApplyRemote(clock, []*crdt.Write{p.write(t, "jobs", id, fv("a", -i))}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := conflictsByScan(t, s)
	if len(want) != 17 {
		t.Fatalf("%d records with a conflict, want 17", len(want))
	}
	// Drop the completion mark and leave a stale entry and half the index,
	// as an interrupted build would.
	b := s.db.NewBatch()
	if err := b.Delete(metaKey(metaConflictIdx), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(conflictIdxKey(recordKey(nil, "jobs", "r01")), nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range want[:8] {
		if err := b.Delete(conflictIdxKey(recordKey(nil, r.Table, r.ID)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Apply(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	defer s.Close()
	if got := conflictsByIndex(t, s, 7); !slices.Equal(got, want) {
		t.Fatalf("rebuilt index %v, want %v", got, want)
	}
}
