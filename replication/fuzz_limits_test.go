package replication

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzReadHello: whatever arrives before the handshake, readMsg within
// the Hello limits reads at most one frame of at most the limit, and
// releases every byte it reserved from the shared budget.
func FuzzReadHello(f *testing.F) {
	hello, _ := EncodeMsg(Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "c", Node: 7, Role: "device", Scope: FullScope()}})
	f.Add(binary.BigEndian.AppendUint32(nil, uint32(len(hello))), hello)
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<20), []byte{byte(msgFragment), 1})
	f.Add(binary.BigEndian.AppendUint32(nil, 3), []byte{byte(msgFragment), 0, 1})
	f.Fuzz(func(t *testing.T, hdr, body []byte) {
		const limit = 1024
		budget := newByteBudget(4096)
		lim := helloLimits(limit)
		lim.budget = budget
		in := append(append([]byte(nil), hdr...), body...)
		_, n, err := readMsg(bytes.NewReader(in), lim)
		if n > 4+limit {
			t.Fatalf("read %d bytes before the handshake (limit %d)", n, limit)
		}
		if err == nil && len(in) >= 5 && in[4] == byte(msgFragment) {
			t.Fatal("a fragment was accepted before the handshake")
		}
		if budget.Buffered() != 0 {
			t.Fatalf("%d bytes left reserved", budget.Buffered())
		}
	})
}

// FuzzHaveVoid: a Have's Void list decodes to well-formed ranges or is
// refused; the void book keeps at most its bounds of it.
func FuzzHaveVoid(f *testing.F) {
	for _, v := range [][]OriginHeld{nil, {{Origin: 9, Contig: 3}}, {{Origin: 9, Ranges: []uint64{5, 1 << 40}}}} {
		b, _ := EncodeMsg(Msg{Have: &Have{Void: v}})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMsg(data)
		if err != nil || m.Have == nil {
			return
		}
		if len(m.Have.Void) > maxVoidOrigins {
			t.Fatalf("a void list of %d origins was accepted", len(m.Have.Void))
		}
		var b voidBook
		for o, h := range fromWireHeld(m.Have.Void) {
			if err := h.Check(); err != nil {
				t.Fatalf("origin %s: %v", o, err)
			}
			if fresh := b.add(o, h); len(h.Missing(fresh)) > 0 {
				t.Fatalf("origin %s: new ranges %v outside the list's %v", o, fresh, h)
			}
			if len(b.m[o].held.Ranges) > maxVoidRanges {
				t.Fatalf("%d void ranges kept", len(b.m[o].held.Ranges))
			}
		}
	})
}
