package store

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// fakeClock returns an HLC clock on a deterministic physical clock that
// advances 1 ms per reading from start.
func fakeClock(start int64) *hlc.Clock {
	var ms atomic.Int64
	ms.Store(start)
	return hlc.NewClock(func() int64 { return ms.Add(1) }, time.Minute)
}

const t0 = 1_700_000_000_000

func mustOpen(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func fv(name string, v any) crdt.FieldValue {
	return crdt.FieldValue{Name: name, Value: crdt.MustValue(v)}
}

// peer is a second replica (in memory, NoSync) that makes writes for
// ApplyRemote.
type peer struct {
	s     *Store
	clock *hlc.Clock
}

func newPeer(t testing.TB, start int64) *peer {
	s := mustOpen(t, Options{Dir: "/peer", FS: vfs.NewMem(), NoSync: true})
	t.Cleanup(func() { s.Close() })
	return &peer{s: s, clock: fakeClock(start)}
}

func (p *peer) write(t testing.TB, table, id string, fields ...crdt.FieldValue) *crdt.Write {
	w, err := p.s.Write(p.clock, table, id, fields, false)
	if err != nil {
		t.Fatalf("peer write: %v", err)
	}
	return w
}

// randWrite makes a random write on the peer.
func (p *peer) randWrite(t testing.TB, rng *rand.Rand, nrec int) *crdt.Write {
	id := fmt.Sprintf("r%d", rng.IntN(nrec))
	if rng.IntN(10) == 0 {
		w, err := p.s.Write(p.clock, "t", id, nil, true)
		if err != nil {
			t.Fatalf("peer delete: %v", err)
		}
		return w
	}
	return p.write(t, "t", id, fv(fmt.Sprintf("f%d", rng.IntN(3)), rng.IntN(1000)))
}

func (p *peer) stream(t testing.TB, after uint64) []*crdt.Write {
	var out []*crdt.Write
	if err := p.s.Stream(p.s.NodeID(), after, func(w *crdt.Write) error { out = append(out, w); return nil }); err != nil {
		t.Fatalf("peer stream: %v", err)
	}
	return out
}
