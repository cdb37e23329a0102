// Package modeltest is the replica model that the query packages' model
// tests share (query/source's TestQueryModel, query/live's
// TestLiveModel): a store on an in-memory filesystem driven with random
// changes of every kind (local and remote writes, deletes, re-creations,
// concurrent writes, merges of whole records, hides, shows, purges,
// tombstone collection), recording which records changed, for the tests
// to check their answers against a brute-force evaluation of the
// records' views. It is for tests only.
package modeltest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

const (
	// T0 is the physical time (ms) the model's clocks start from.
	T0 = 1_700_000_000_000
	// NowMs is the queries' "now": ten days after T0.
	NowMs = T0 + 10*24*3600*1000
	// IDs is the number of record ids (j00..j29) the changes touch.
	IDs = 30
	// Table is the one table the model writes.
	Table = "t"
)

// ClockAt returns a clock whose physical time starts at start (ms) and
// advances one millisecond at each reading.
func ClockAt(start int64) *hlc.Clock {
	var ms atomic.Int64
	ms.Store(start)
	return hlc.NewClock(func() int64 { return ms.Add(1) }, time.Minute)
}

// Replica is a store and the clock its writes are stamped with.
type Replica struct {
	S     *store.Store
	Clock *hlc.Clock
}

// Open opens a store in dir on a fresh in-memory filesystem (closed when
// the test ends), its clock starting at start.
func Open(t testing.TB, dir string, start int64) *Replica {
	s, err := store.Open(store.Options{Dir: dir, FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &Replica{S: s, Clock: ClockAt(start)}
}

// Model drives R with random changes of every kind, some of them from
// Peers (their writes delivered in batches, or late, or as whole
// records).
type Model struct {
	T       testing.TB
	Rng     *rand.Rand
	R       *Replica
	Peers   []*Replica
	Sent    []uint64        // per peer: the last sequence number delivered to R
	Retired map[string]bool // purged or collected: never written again
	Touched map[string]bool // written since the test last reset it
}

// New returns a model of r with its peers.
func New(t testing.TB, rng *rand.Rand, r *Replica, peers ...*Replica) *Model {
	return &Model{T: t, Rng: rng, R: r, Peers: peers, Sent: make([]uint64, len(peers)),
		Retired: map[string]bool{}, Touched: map[string]bool{}}
}

// Value returns a random value of field: values of several kinds (a
// string, an integer, a float, a bool, null) in the same field.
func (m *Model) Value(field string) any {
	switch field {
	case "status":
		return []any{"open", "done", "open", nil, "2026-01-02"}[m.Rng.IntN(5)]
	case "owner":
		return []any{"a", "b", "c", "a"}[m.Rng.IntN(4)]
	case "prio":
		return []any{int64(1), int64(2), int64(3), 2.5, "high", true, int64(1) << 60}[m.Rng.IntN(7)]
	}
	return []any{int64(m.Rng.IntN(3)), "x", []any{int64(1)}, nil}[m.Rng.IntN(4)]
}

// Fields returns a random non-empty subset of status, owner, prio and x
// with random values.
func (m *Model) Fields() []crdt.FieldValue {
	var fs []crdt.FieldValue
	for _, f := range []string{"status", "owner", "prio", "x"} {
		if m.Rng.IntN(3) > 0 {
			fs = append(fs, crdt.FieldValue{Name: f, Value: crdt.MustValue(m.Value(f))})
		}
	}
	if len(fs) == 0 {
		fs = append(fs, crdt.FieldValue{Name: "owner", Value: crdt.MustValue("a")})
	}
	return fs
}

// Step makes one random change.
func (m *Model) Step() {
	t, rng := m.T, m.Rng
	id := fmt.Sprintf("j%02d", rng.IntN(IDs))
	op := rng.IntN(20)
	if m.Retired[id] && op < 17 {
		return
	}
	switch {
	case op < 7: // local write, delete or re-creation
		if m.R.S.Hidden(Table, id) {
			return
		}
		del := rng.IntN(5) == 0
		var fs []crdt.FieldValue
		if !del {
			fs = m.Fields()
		}
		if _, err := m.R.S.Write(m.R.Clock, Table, id, fs, del); err != nil {
			t.Fatal(err)
		}
		m.Touched[id] = true
	case op < 13: // peers write concurrently; their writes arrive
		i := rng.IntN(len(m.Peers))
		p := m.Peers[i]
		for n := 1 + rng.IntN(3); n > 0; n-- {
			pid := fmt.Sprintf("j%02d", rng.IntN(IDs))
			if m.Retired[pid] {
				continue
			}
			del := rng.IntN(6) == 0
			var fs []crdt.FieldValue
			if !del {
				fs = m.Fields()
			}
			if _, err := p.S.Write(p.Clock, Table, pid, fs, del); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			return // not delivered yet: a later batch or a merge brings them
		}
		var ws []*crdt.Write
		if err := p.S.Stream(p.S.NodeID(), m.Sent[i], func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
			t.Fatal(err)
		}
		m.Sent[i] += uint64(len(ws))
		purge := rng.IntN(5) == 0 && len(ws) > 0
		var pw *crdt.Write
		if purge {
			pw = ws[rng.IntN(len(ws))]
		}
		if _, err := m.R.S.ApplyRemoteWith(m.R.Clock, ws, nil, func(b *store.Batch, _ *store.Result) error {
			if purge {
				b.Purge(pw.Table, pw.ID, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			m.Touched[w.ID] = true
		}
		if purge {
			m.Retired[pw.ID] = true
		}
	case op < 15: // a peer's whole record merged
		p := m.Peers[rng.IntN(len(m.Peers))]
		rec, err := p.S.GetAny(Table, id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.R.S.MergeRecord(m.R.Clock, Table, id, rec); err != nil {
			t.Fatal(err)
		}
		m.Touched[id] = true
	case op < 17: // the scope narrows and widens: hide, show, purge
		hidden := m.R.S.Hidden(Table, id)
		if err := m.R.S.Update(func(b *store.Batch) error {
			if rng.IntN(3) == 0 {
				b.Purge(Table, id, nil)
				m.Retired[id] = true
			} else {
				b.SetHidden(Table, id, !hidden, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		m.Touched[id] = true
	case op < 18: // tombstone collection once every replica has every write
		m.Collect()
	}
}

// Collect brings every replica every write, raises the tombstone horizon
// to all of them and collects: deleted records go (retired: never
// written again).
func (m *Model) Collect() {
	t := m.T
	all := []*Replica{m.R}
	all = append(all, m.Peers...)
	for round := 0; round < 2; round++ {
		for _, src := range all {
			for _, dst := range all {
				if src == dst {
					continue
				}
				for o := range src.S.Holdings() {
					var ws []*crdt.Write
					if err := src.S.Stream(o, dst.S.HeldOf(o).Contig, func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
						t.Fatal(err)
					}
					if len(ws) == 0 {
						continue
					}
					if _, err := dst.S.ApplyRemote(dst.Clock, ws, nil); err != nil {
						t.Fatal(err)
					}
					if dst == m.R {
						for _, w := range ws {
							m.Touched[w.ID] = true
						}
					}
				}
			}
		}
	}
	for i, p := range m.Peers {
		m.Sent[i] = m.R.S.HeldOf(p.S.NodeID()).Contig
	}
	var h crdt.VV
	for o, held := range m.R.S.Holdings() {
		if held.Contig > 0 {
			h.Set(crdt.Dot{Node: o, Seq: held.Contig})
		}
	}
	stored := map[string]bool{}
	for i := 0; i < IDs; i++ {
		id := fmt.Sprintf("j%02d", i)
		for _, r := range all {
			if _, err := r.S.GetAny(Table, id); err == nil {
				stored[id] = true
			}
		}
	}
	for _, r := range all {
		if _, err := r.S.RaiseGCHorizon(h); err != nil {
			t.Fatal(err)
		}
		if _, err := r.S.Collect(0); err != nil {
			t.Fatal(err)
		}
	}
	for id := range stored {
		for _, r := range all {
			if _, err := r.S.GetAny(Table, id); errors.Is(err, store.ErrNotFound) {
				m.Retired[id] = true
				m.Touched[id] = true
			}
		}
	}
}
