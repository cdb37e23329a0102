package live

// The replica model below (random changes of every kind: local and
// remote writes, deletes, re-creations, concurrent writes, merges,
// hides, shows, purges, tombstone collection) is the one of package
// query/source's model test.

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
	t0    = 1_700_000_000_000
	nowMs = t0 + 10*24*3600*1000
	nIDs  = 30
)

func clockAt(start int64) *hlc.Clock {
	var ms atomic.Int64
	ms.Store(start)
	return hlc.NewClock(func() int64 { return ms.Add(1) }, time.Minute)
}

type replica struct {
	s     *store.Store
	clock *hlc.Clock
}

func open(t testing.TB, dir string, start int64) *replica {
	s, err := store.Open(store.Options{Dir: dir, FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &replica{s: s, clock: clockAt(start)}
}

// model drives a replica with random changes of every kind and checks
// random queries against a brute-force evaluation of the records' views.
type model struct {
	t       testing.TB
	rng     *rand.Rand
	r       *replica
	peers   []*replica
	sent    []uint64
	retired map[string]bool // purged or collected: never written again
	touched map[string]bool // written since the last reset
}

func (m *model) value(field string) any {
	switch field {
	case "status":
		return []any{"open", "done", "open", nil, "2026-01-02"}[m.rng.IntN(5)]
	case "owner":
		return []any{"a", "b", "c", "a"}[m.rng.IntN(4)]
	case "prio":
		return []any{int64(1), int64(2), int64(3), 2.5, "high", true, int64(1) << 60}[m.rng.IntN(7)]
	}
	return []any{int64(m.rng.IntN(3)), "x", []any{int64(1)}, nil}[m.rng.IntN(4)]
}

func (m *model) fields() []crdt.FieldValue {
	var fs []crdt.FieldValue
	for _, f := range []string{"status", "owner", "prio", "x"} {
		if m.rng.IntN(3) > 0 {
			fs = append(fs, crdt.FieldValue{Name: f, Value: crdt.MustValue(m.value(f))})
		}
	}
	if len(fs) == 0 {
		fs = append(fs, crdt.FieldValue{Name: "owner", Value: crdt.MustValue("a")})
	}
	return fs
}

// step makes one random change.
func (m *model) step() {
	t, rng := m.t, m.rng
	id := fmt.Sprintf("j%02d", rng.IntN(nIDs))
	op := rng.IntN(20)
	if m.retired[id] && op < 17 {
		return
	}
	switch {
	case op < 7: // local write, delete or re-creation
		if m.r.s.Hidden("t", id) {
			return
		}
		del := rng.IntN(5) == 0
		var fs []crdt.FieldValue
		if !del {
			fs = m.fields()
		}
		if _, err := m.r.s.Write(m.r.clock, "t", id, fs, del); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 13: // peers write concurrently; their writes arrive
		i := rng.IntN(len(m.peers))
		p := m.peers[i]
		for n := 1 + rng.IntN(3); n > 0; n-- {
			pid := fmt.Sprintf("j%02d", rng.IntN(nIDs))
			if m.retired[pid] {
				continue
			}
			del := rng.IntN(6) == 0
			var fs []crdt.FieldValue
			if !del {
				fs = m.fields()
			}
			if _, err := p.s.Write(p.clock, "t", pid, fs, del); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			return // not delivered yet: a later batch or a merge brings them
		}
		var ws []*crdt.Write
		if err := p.s.Stream(p.s.NodeID(), m.sent[i], func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
			t.Fatal(err)
		}
		m.sent[i] += uint64(len(ws))
		purge := rng.IntN(5) == 0 && len(ws) > 0
		var pw *crdt.Write
		if purge {
			pw = ws[rng.IntN(len(ws))]
		}
		if _, err := m.r.s.ApplyRemoteWith(m.r.clock, ws, nil, func(b *store.Batch, _ *store.Result) error {
			if purge {
				b.Purge(pw.Table, pw.ID, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			m.touched[w.ID] = true
		}
		if purge {
			m.retired[pw.ID] = true
		}
	case op < 15: // a peer's whole record merged
		p := m.peers[rng.IntN(len(m.peers))]
		rec, err := p.s.GetAny("t", id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.r.s.MergeRecord(m.r.clock, "t", id, rec); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 17: // the scope narrows and widens: hide, show, purge
		hidden := m.r.s.Hidden("t", id)
		if err := m.r.s.Update(func(b *store.Batch) error {
			if rng.IntN(3) == 0 {
				b.Purge("t", id, nil)
				m.retired[id] = true
			} else {
				b.SetHidden("t", id, !hidden, nil)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		m.touched[id] = true
	case op < 18: // tombstone collection once every replica has every write
		m.collect()
	}
}

func (m *model) collect() {
	t := m.t
	all := []*replica{m.r}
	all = append(all, m.peers...)
	for round := 0; round < 2; round++ {
		for _, src := range all {
			for _, dst := range all {
				if src == dst {
					continue
				}
				for o := range src.s.Holdings() {
					var ws []*crdt.Write
					if err := src.s.Stream(o, dst.s.HeldOf(o).Contig, func(w *crdt.Write) error { ws = append(ws, w); return nil }); err != nil {
						t.Fatal(err)
					}
					if len(ws) == 0 {
						continue
					}
					if _, err := dst.s.ApplyRemote(dst.clock, ws, nil); err != nil {
						t.Fatal(err)
					}
					if dst == m.r {
						for _, w := range ws {
							m.touched[w.ID] = true
						}
					}
				}
			}
		}
	}
	for i, p := range m.peers {
		m.sent[i] = m.r.s.HeldOf(p.s.NodeID()).Contig
	}
	var h crdt.VV
	for o, held := range m.r.s.Holdings() {
		if held.Contig > 0 {
			h.Set(crdt.Dot{Node: o, Seq: held.Contig})
		}
	}
	stored := map[string]bool{}
	for i := 0; i < nIDs; i++ {
		id := fmt.Sprintf("j%02d", i)
		for _, r := range all {
			if _, err := r.s.GetAny("t", id); err == nil {
				stored[id] = true
			}
		}
	}
	for _, r := range all {
		if _, err := r.s.RaiseGCHorizon(h); err != nil {
			t.Fatal(err)
		}
		if _, err := r.s.Collect(0); err != nil {
			t.Fatal(err)
		}
	}
	for id := range stored {
		for _, r := range all {
			if _, err := r.s.GetAny("t", id); errors.Is(err, store.ErrNotFound) {
				m.retired[id] = true
				m.touched[id] = true
			}
		}
	}
}
