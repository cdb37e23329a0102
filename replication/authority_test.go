package replication

import (
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// The false empty claims a node passes on survive its restart.
func TestVoidBookKept(t *testing.T) {
	fs := vfs.NewMem()
	open := func() *store.Store {
		st, err := store.Open(store.Options{FS: fs, Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	fail := func(err error) { t.Error(err) }
	b := newVoidBook(st, fail)
	var h store.Held
	h.Add(3, 1_000_000)
	if fresh := b.addSaved(0x77, h); fresh.Max() != 1_000_000 {
		t.Fatalf("fresh %v", fresh)
	}
	h2 := store.Held{Contig: 5}
	b.addSaved(0x78, h2)
	want := b.wire()
	st.Close()
	st = open()
	defer st.Close()
	if got := newVoidBook(st, fail).wire(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart: %v, want %v", got, want)
	}
	// Known ranges are not fresh again.
	if fresh := newVoidBook(st, fail).add(hlc.NodeID(0x77), h); fresh.Max() != 0 {
		t.Fatalf("a kept range came back fresh: %v", fresh)
	}
}

// FuzzDecodeVoids: the stored void list decodes within its bounds or is
// refused, and what decodes encodes back to the same list.
func FuzzDecodeVoids(f *testing.F) {
	e := &voidEntry{}
	e.held.Add(3, 9)
	e.held.Add(20, 30)
	f.Add(encodeVoids(map[hlc.NodeID]*voidEntry{5: e}))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeVoids(data)
		if err != nil {
			return
		}
		if len(m) > maxVoidOrigins {
			t.Fatalf("%d origins", len(m))
		}
		for o, e := range m {
			if o == 0 || e.held.Check() != nil {
				t.Fatalf("origin %v: %v", o, e.held)
			}
		}
		m2, err := decodeVoids(encodeVoids(m))
		if err != nil || len(m2) != len(m) {
			t.Fatalf("round trip: %v (%d of %d)", err, len(m2), len(m))
		}
		for o, e := range m {
			if !m2[o].held.Equal(e.held) || !m2[o].at.Equal(e.at) {
				t.Fatalf("origin %v: %v, then %v", o, e, m2[o])
			}
		}
	})
}
