package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
)

// runPair runs a session between a (dialer) and b over a real connection
// pair and returns both errors.
func runPair(t *testing.T, ca, cb net.Conn, a, b *simNode) (error, error) {
	var wg sync.WaitGroup
	var ea, eb error
	wg.Add(2)
	go func() {
		defer wg.Done()
		ea = RunConn(context.Background(), ca, NewSession(a.local, true), ConnOptions{IdleTimeout: 10 * time.Second})
	}()
	go func() {
		defer wg.Done()
		eb = RunConn(context.Background(), cb, NewSession(b.local, false), ConnOptions{IdleTimeout: 10 * time.Second})
	}()
	wg.Wait()
	return ea, eb
}

func loopbackPair(t *testing.T) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	ca, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		t.Fatal("accept failed")
	}
	return ca, cb
}

// TestLoopbackBothDirections: both sides have much to send at once over
// TCP (the writer goroutine keeps them from deadlocking).
func TestLoopbackBothDirections(t *testing.T) {
	s := newSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "hub", FullScope())
	for i := 0; i < 3000; i++ {
		a.phys++
		b.phys++
		s.write(a, "t", fmt.Sprintf("a%d", i%300), map[string]any{"v": strings.Repeat("x", 200), "i": i}, false)
		s.write(b, "t", fmt.Sprintf("b%d", i%300), map[string]any{"v": strings.Repeat("y", 200), "i": i}, false)
	}
	ca, cb := loopbackPair(t)
	ea, eb := runPair(t, ca, cb, a, b)
	if ea != nil || eb != nil {
		t.Fatalf("dialer: %v; listener: %v", ea, eb)
	}
	if digest(t, a) != digest(t, b) {
		t.Fatal("replicas differ")
	}
}

// TestHugeWrite: one write of 100,000 fields (larger than a frame) syncs.
func TestHugeWrite(t *testing.T) {
	s := newSim(t)
	a := s.add("a", "device", FullScope())
	b := s.add("b", "hub", FullScope())
	fields := map[string]any{}
	for i := 0; i < 100_000; i++ {
		fields[fmt.Sprintf("field%06d", i)] = i
	}
	w := s.write(a, "big", "one", fields, false)
	enc, _ := crdt.AppendWrite(nil, w)
	if len(enc) <= MaxFrameBytes {
		t.Fatalf("write of %d bytes does not exercise fragmentation", len(enc))
	}
	c1, c2 := net.Pipe()
	ea, eb := runPair(t, c1, c2, a, b)
	if ea != nil || eb != nil {
		t.Fatalf("dialer: %v; listener: %v", ea, eb)
	}
	rec, err := b.st.Get("big", "one")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Values()); n != 100_000 {
		t.Fatalf("hub holds %d fields, want 100000", n)
	}
}

// TestHostileFrames: malformed, truncated, oversized frames close the
// connection with a reason; nothing is applied; the node keeps serving.
func TestHostileFrames(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	honest := s.add("honest", "device", FullScope())
	s.write(honest, "t", "1", map[string]any{"v": 1}, false)

	hello, _ := EncodeMsg(Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: "sim", Node: 99, Role: "device", Scope: FullScope()}})
	frame := func(b []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	badChunk := append([]byte{byte(MsgChunk)}, 0x93, 0x01, 0xc4, 0x03, 1, 2, 3, 0x90) // a body that does not decode
	cases := []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"zero length", []byte{0, 0, 0, 0}},
		{"oversized", binary.BigEndian.AppendUint32(nil, MaxFrameBytes+1)},
		{"truncated", frame(hello)[:10]},
		{"unknown type", frame([]byte{0x7f, 0x90})},
		{"bad body", frame([]byte{byte(MsgHello), 0xc1})},
		{"chunk before hello", frame(badChunk)},
		{"bad chunk after hello", append(frame(hello), frame(badChunk)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := digest(t, hub)
			c1, c2 := net.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- RunConn(context.Background(), c2, NewSession(hub.local, false), ConnOptions{IdleTimeout: 2 * time.Second})
			}()
			go func() {
				c1.Write(tc.data)
				// Drain whatever the hub says, then close.
				buf := make([]byte, 4096)
				c1.SetReadDeadline(time.Now().Add(3 * time.Second))
				for {
					if _, err := c1.Read(buf); err != nil {
						break
					}
				}
				c1.Close()
			}()
			err := <-done
			if err == nil {
				t.Fatal("hostile input did not end the session with an error")
			}
			t.Logf("reason: %v", err)
			if digest(t, hub) != before {
				t.Fatal("hostile input changed the hub's state")
			}
		})
	}
	// The hub still serves an honest device.
	c1, c2 := net.Pipe()
	if ea, eb := runPair(t, c1, c2, honest, hub); ea != nil || eb != nil {
		t.Fatalf("honest session: %v / %v", ea, eb)
	}
	if digest(t, hub) != digest(t, honest) {
		t.Fatal("honest session did not sync")
	}
}

// FuzzReadMsg: any bytes either decode to a valid message or fail cleanly.
func FuzzReadMsg(f *testing.F) {
	for _, m := range []Msg{
		{Hello: &Hello{Proto: 1, Cluster: "c", Node: 1, Role: "hub", Scope: TablesScope("a", "b")}},
		{Have: &Have{Origins: []OriginHeld{{Origin: 1, Contig: 5, Ranges: []uint64{7, 9}}}}},
		{Chunk: &Chunk{No: 1, Body: []byte{0x90}, Empties: []OriginHeld{{Origin: 2, Contig: 3}}}},
		{Ack: &Ack{No: 3}},
		{Done: &Done{}},
	} {
		var b bytes.Buffer
		WriteMsg(&b, m)
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := ReadMsg(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if _, err := WriteMsg(&b, m); err != nil {
			t.Fatalf("re-encode %v: %v", m.Type(), err)
		}
		if _, _, err := ReadMsg(&b); err != nil {
			t.Fatalf("re-decode %v: %v", m.Type(), err)
		}
	})
}
