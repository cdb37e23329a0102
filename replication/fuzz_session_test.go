package replication

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// FuzzSessionMessages feeds a session, on either side, a handshake and then
// arbitrary messages as a hostile peer would send them: the session must
// answer or fail with an error, never panic, and never hold writes of its
// own origin that it did not make.
func FuzzSessionMessages(f *testing.F) {
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: "c", MemTableSize: 1 << 20, CacheSize: 1 << 20, NodeID: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	if _, err := st.Write(clock, "t", "r", []crdt.FieldValue{{Name: "a", Value: crdt.MustValue(1)}}, false); err != nil {
		f.Fatal(err)
	}
	local := &Local{Node: 1, Cluster: "c", Role: "hub", Scope: FullScope(), Clock: clock, Store: st}

	frames := func(ms ...Msg) []byte {
		var b bytes.Buffer
		for _, m := range ms {
			WriteMsg(&b, m)
		}
		return b.Bytes()
	}
	body, _ := encodeChunkWrites([]*crdt.Write{{Origin: 2, Seq: 1, TS: 1 << 16, Table: "t", ID: "x",
		Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("s")}}}}, 2, 1)
	own, _ := encodeChunkWrites([]*crdt.Write{{Origin: 1, Seq: 2, TS: 1 << 16, Table: "t", ID: "x",
		Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("s")}}}}, 2, 1)
	hello := Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: "device", Scope: FullScope()}}
	welcome := Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "c", Node: 2, Role: "device", Scope: FullScope()}}
	for _, dialer := range []bool{false, true} {
		first := hello
		if dialer {
			first = welcome
		}
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Body: body}}, Msg{Done: &Done{}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Body: own}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{}}, Msg{Chunk: &Chunk{No: 1, Empties: []OriginHeld{{Origin: 1, Contig: 9}}}}))
		f.Add(dialer, frames(first, Msg{Have: &Have{Origins: []OriginHeld{{Origin: 1, Contig: 0, Ranges: []uint64{5, 3}}}}}, Msg{Ack: &Ack{No: 9}}))
		f.Add(dialer, frames(first, Msg{RecordReq: &RecordReq{}}, Msg{Records: &Records{}}))
	}
	f.Fuzz(func(t *testing.T, dialer bool, data []byte) {
		s := NewSession(local, dialer)
		s.Start()
		r := bytes.NewReader(data)
		for i := 0; i < 64 && !s.Finished(); i++ {
			m, _, err := ReadMsg(r)
			if err != nil {
				break
			}
			if _, err := s.Handle(m); err != nil {
				break
			}
		}
		if got := st.HeldOf(1).Max(); got != 1 {
			t.Fatalf("the node holds its own origin up to %d after hostile input", got)
		}
	})
}
