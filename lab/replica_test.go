package lab

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// TestReplicaMatchesStore: the lab's in-memory replicas and the daemon's
// store (Pebble on an in-memory filesystem), given the same local writes
// and the same sessions message by message, hold the same records
// (digests) and the same holdings, and answer every session the same.
func TestReplicaMatchesStore(t *testing.T) {
	const nodes = 3
	phys := int64(epochMs)
	type pair struct {
		st    *store.Store
		real  *replication.Local
		rep   *replica
		lab   *replication.Local
		clock [2]*hlc.Clock
	}
	var ps []*pair
	for i := range nodes {
		id := hlc.NodeID(i + 1)
		st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/data", NoSync: true, ClusterID: cluster,
			MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		p := &pair{st: st, rep: newReplica(id, true)}
		skew := int64(i) * 20_000 // within the clock bound
		for k := range p.clock {
			p.clock[k] = hlc.NewClock(func() int64 { return phys + skew }, time60s)
		}
		role := "device"
		if i == 0 {
			role = "hub"
		}
		p.real = &replication.Local{Node: id, Cluster: cluster, Role: role, Scope: replication.FullScope(), Clock: p.clock[0], Store: st}
		p.lab = &replication.Local{Node: id, Cluster: cluster, Role: role, Scope: replication.FullScope(), Clock: p.clock[1], Store: p.rep}
		ps = append(ps, p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	session := func(a, b *replication.Local, order []int) []string {
		sa, sb := replication.NewSession(a, true), replication.NewSession(b, false)
		toB, toA := sa.Start(), sb.Start()
		var trace []string
		for i := 0; !(sa.Finished() && sb.Finished()); i++ {
			if len(toA) == 0 && len(toB) == 0 {
				t.Fatal("session stalled")
			}
			var m replication.Msg
			var dst *replication.Session
			if len(toA) == 0 || (len(toB) > 0 && order[i%len(order)] == 0) {
				m, toB, dst = toB[0], toB[1:], sb
			} else {
				m, toA, dst = toA[0], toA[1:], sa
			}
			enc, err := replication.EncodeMsg(m)
			if err != nil {
				t.Fatal(err)
			}
			trace = append(trace, fmt.Sprintf("%x", enc))
			out, err := dst.Handle(m)
			if err != nil {
				t.Fatal(err)
			}
			if dst == sa {
				toB = append(toB, out...)
			} else {
				toA = append(toA, out...)
			}
		}
		return trace
	}
	for step := range 400 {
		phys += int64(rng.IntN(5000))
		p := ps[rng.IntN(nodes)]
		if rng.IntN(3) > 0 {
			id := fmt.Sprintf("r%d", rng.IntN(4))
			del := rng.IntN(10) == 0
			var fs []crdt.FieldValue
			if !del {
				fs = []crdt.FieldValue{{Name: fmt.Sprintf("f%d", rng.IntN(3)), Value: crdt.MustValue(step)}}
			}
			w, err := p.st.Write(p.clock[0], "t", id, fs, del)
			if err != nil {
				t.Fatal(err)
			}
			rec := p.rep.record("t", id)
			if ctx := rec.Context(); !ctx.Equal(w.Ctx) {
				t.Fatalf("step %d: the store's context %v, the lab's %v", step, w.Ctx, ctx)
			}
			lw, _ := p.rep.writeLocal("t", id, w.Fields, w.Delete, p.clock[1].Now(), rec.Context())
			if lw.Dot() != w.Dot() || lw.TS != w.TS {
				t.Fatalf("step %d: the store wrote %v at %v, the lab %v at %v", step, w.Dot(), w.TS, lw.Dot(), lw.TS)
			}
			continue
		}
		q := ps[rng.IntN(nodes)]
		if q == p {
			continue
		}
		order := []int{rng.IntN(2), rng.IntN(2), rng.IntN(2)}
		realTrace := session(p.real, q.real, order)
		labTrace := session(p.lab, q.lab, order)
		if fmt.Sprint(realTrace) != fmt.Sprint(labTrace) {
			t.Fatalf("step %d: the sessions differ on the wire:\nstore: %v\nlab:   %v", step, realTrace, labTrace)
		}
	}
	for i, p := range ps {
		h := p.st.Holdings()
		if fmt.Sprint(h) != fmt.Sprint(p.rep.Holdings()) {
			t.Errorf("node %d: holdings %v (store) and %v (lab)", i+1, h, p.rep.Holdings())
		}
		for k := range 4 {
			id := fmt.Sprintf("r%d", k)
			a, err := p.st.GetAny("t", id)
			b, err2 := p.rep.GetAny("t", id)
			if (err == nil) != (err2 == nil) {
				t.Fatalf("node %d %s: %v, %v", i+1, id, err, err2)
			}
			if err == nil && a.Digest() != b.Digest() {
				t.Errorf("node %d %s: records differ", i+1, id)
			}
		}
	}
}

const time60s = hlc.DefaultMaxOffset
