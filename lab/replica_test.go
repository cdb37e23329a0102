package lab

import (
	"fmt"
	"math/rand/v2"
	"strings"
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
		// The lab's replicas do not take record states (state transfer):
		// the store side does not either, so both speak the same bytes.
		p.real = &replication.Local{Node: id, Cluster: cluster, Role: role, Scope: replication.FullScope(), Clock: p.clock[0], Store: st, NoStateTransfer: true}
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

// benchPair is a device and a hub on either the daemon's store or the
// lab's replicas.
func benchPair(b *testing.B, real bool) (dev, hub *replication.Local, write func(i int)) {
	phys := int64(epochMs)
	var locals [2]*replication.Local
	var stores [2]*store.Store
	var reps [2]*replica
	for i := range 2 {
		id := hlc.NodeID(i + 1)
		clock := hlc.NewClock(func() int64 { return phys }, hlc.DefaultMaxOffset)
		role := []string{"device", "hub"}[i]
		l := &replication.Local{Node: id, Cluster: cluster, Role: role, Scope: replication.FullScope(), Clock: clock}
		if real {
			st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/data", NoSync: true, ClusterID: cluster,
				MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: id})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			stores[i], l.Store = st, st
		} else {
			reps[i] = newReplica(id, true)
			l.Store = reps[i]
		}
		locals[i] = l
	}
	write = func(i int) {
		phys += 1000
		id := fmt.Sprintf("r%d", i%40)
		fs := []crdt.FieldValue{{Name: fmt.Sprintf("f%d", i%6), Value: crdt.MustValue(i)}}
		if real {
			if _, err := stores[0].Write(locals[0].Clock, "t", id, fs, false); err != nil {
				b.Fatal(err)
			}
			return
		}
		rec := reps[0].record("t", id)
		reps[0].writeLocal("t", id, fs, false, locals[0].Clock.Now(), rec.Context())
	}
	return locals[0], locals[1], write
}

func runSession(b *testing.B, a, c *replication.Local) {
	sa, sb := replication.NewSession(a, true), replication.NewSession(c, false)
	toB, toA := sa.Start(), sb.Start()
	for !(sa.Finished() && sb.Finished()) {
		var m replication.Msg
		var dst *replication.Session
		if len(toB) > 0 {
			m, toB, dst = toB[0], toB[1:], sb
		} else if len(toA) > 0 {
			m, toA, dst = toA[0], toA[1:], sa
		} else {
			b.Fatal("stalled")
		}
		if _, err := replication.EncodeMsg(m); err != nil {
			b.Fatal(err)
		}
		out, err := dst.Handle(m)
		if err != nil {
			b.Fatal(err)
		}
		if dst == sa {
			toB = append(toB, out...)
		} else {
			toA = append(toA, out...)
		}
	}
}

// BenchmarkWriteAndPush: one local write at a device, then a session
// that pushes it to the hub, on the daemon's store (Pebble on a memory
// filesystem, no fsync) and on the lab's in-memory replicas: what the
// lab saves per simulated write.
func BenchmarkWriteAndPush(b *testing.B) {
	for _, real := range []bool{true, false} {
		name := "lab-replica"
		if real {
			name = "pebble-store"
		}
		b.Run(name, func(b *testing.B) {
			dev, hub, write := benchPair(b, real)
			i := 0
			for b.Loop() {
				write(i)
				runSession(b, dev, hub)
				i++
			}
		})
	}
}

// TestReplicaScopeBatch: replication's hooks get a batch from a lab
// replica too (it used to give none, nil), and a hook asking it to hide
// a record, which a full-scope replica never holds, fails the call
// loudly instead of dereferencing nothing.
func TestReplicaScopeBatch(t *testing.T) {
	r := newReplica(hlc.NodeID(7), false)
	w := &crdt.Write{Table: "t", ID: "x", Origin: hlc.NodeID(9), Seq: 1, TS: hlc.New(1000, 0),
		Fields: []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(1)}}}
	var got replication.Batch
	if _, err := r.ApplyRemoteScoped(nil, []*crdt.Write{w}, nil, func(b replication.Batch, _ *store.Result) error {
		got = b
		if sk, hidden := b.HiddenSkipped("t", "x"); hidden {
			return fmt.Errorf("a lab replica's batch reports x hidden (%v)", sk)
		}
		return nil
	}); err != nil || got == nil {
		t.Fatalf("hook got batch %v (%v)", got, err)
	}
	w2 := *w
	w2.Seq, w2.Ctx = 2, crdt.VV{{Node: w.Origin, Seq: 1}}
	_, err := r.ApplyRemoteScoped(nil, []*crdt.Write{&w2}, nil, func(b replication.Batch, _ *store.Result) error {
		b.SetHidden("t", "x", true, nil)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "full scope") {
		t.Fatalf("hiding a record on a lab replica: %v", err)
	}
}
