package e2e

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads and records
// every byte it received, per connection.
type echoServer struct {
	ln   net.Listener
	mu   sync.Mutex
	got  [][]byte
	wg   sync.WaitGroup
	done chan struct{}
}

func newEchoServer(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := len(s.got)
			s.got = append(s.got, nil)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						s.mu.Lock()
						s.got[i] = append(s.got[i], buf[:n]...)
						s.mu.Unlock()
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *echoServer) conns() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.got))
	for i, b := range s.got {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

func roundTrip(t *testing.T, c net.Conn, msg string, timeout time.Duration) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// TestLinkFaults: the proxy forwards, cuts, stalls one way, delays,
// resets and replays as it says.
func TestLinkFaults(t *testing.T) {
	srv := newEchoServer(t)
	l, err := NewLink("a", "b", srv.ln.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := dial()
	if got, err := roundTrip(t, c, "hello", 2*time.Second); err != nil || got != "hello" {
		t.Fatalf("forwarding: %q %v", got, err)
	}

	// One-way stall: the bytes wait in the proxy, then arrive.
	l.SetStall(true, true)
	if _, err := roundTrip(t, c, "stalled", 300*time.Millisecond); err == nil {
		t.Fatal("an answer came through a stalled link")
	}
	l.SetStall(true, false)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "stalled" {
		t.Fatalf("after the stall: %q %v", buf, err)
	}

	// Delay.
	l.SetDelay(150 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(t, c, "slow", 2*time.Second); err != nil || got != "slow" {
		t.Fatalf("delayed: %q %v", got, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("a round trip through a 150 ms delay took %v", d)
	}
	l.SetDelay(0)

	// Cut: the open connection closes, new ones are closed at once.
	l.SetCut(true)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a connection survived a cut")
	}
	c.Close()
	c = dial()
	if _, err := roundTrip(t, c, "x", time.Second); err == nil {
		t.Fatal("a new connection worked through a cut link")
	}
	c.Close()
	l.SetCut(false)

	// Drop with probability 1: the connection is reset mid-stream, after
	// at most part of the bytes.
	l.SetDrop(1)
	c = dial()
	got, err := roundTrip(t, c, "abcdefgh", time.Second)
	if err == nil {
		t.Fatalf("a dropped connection answered %q", got)
	}
	c.Close()
	l.SetDrop(0)

	// Duplicate: after the connection ends, its bytes are replayed to the
	// listener on a new connection.
	before := len(srv.conns())
	l.SetDup(true)
	c = dial()
	if got, err := roundTrip(t, c, "twice", 2*time.Second); err != nil || got != "twice" {
		t.Fatalf("dup: %q %v", got, err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs := srv.conns()
		n := 0
		for _, b := range cs[before:] {
			if bytes.Equal(b, []byte("twice")) {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener saw %q after a duplicated connection; want the bytes twice", cs[before:])
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.Heal()
	if accepted, refused, dropped, replayed := l.Counts(); refused < 1 || dropped < 1 || replayed < 1 || accepted < 3 {
		t.Errorf("counts: accepted %d refused %d dropped %d replayed %d", accepted, refused, dropped, replayed)
	}
}
