package e2e

import (
	"errors"
	"io"
	"math/rand"
	"net"
	"sync"
	"time"
)

// Link is a TCP proxy for one directed link between two nodes: the dialer
// (From) connects to the proxy's address instead of the listener's (To)
// sync address, and the proxy forwards bytes both ways, injecting faults:
//
//   - Cut: existing connections are closed and new ones refused (closed at
//     once), in both directions.
//   - Stall (one-way partition): bytes in one direction are held back (not
//     forwarded, not lost) until the stall ends; the other direction flows.
//     Up is dialer to listener, down is listener to dialer.
//   - Delay: every forwarded read waits this long first.
//   - Drop: each forwarded read is, with this probability, the last: the
//     connection is reset mid-stream (a loss TCP gives up on).
//   - Duplicate: after each connection ends, the bytes the dialer sent on
//     it are replayed on a fresh connection to the listener (so the
//     listener receives the same session, its chunks included, twice);
//     the replay's answers are read and discarded.
//
// A Link never changes the bytes it forwards: loopback TCP does not
// corrupt, and neither does the proxy.
type Link struct {
	From, To string // node names
	target   string
	ln       net.Listener

	mu        sync.Mutex
	cut       bool
	stallUp   bool
	stallDown bool
	delay     time.Duration
	drop      float64
	dup       bool
	rng       *rand.Rand
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	// counters
	accepted, refused, dropped, replayed int
}

// maxRecord bounds the bytes recorded per connection for a replay.
const maxRecord = 4 << 20

// NewLink listens on a free loopback port and forwards to target.
func NewLink(from, to, target string, seed int64) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{From: from, To: to, target: target, ln: ln, rng: rand.New(rand.NewSource(seed)), conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

// Addr is the address the dialer uses.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Target is the listener's address.
func (l *Link) Target() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.target
}

// SetTarget changes the listener's address (a node restarted on another
// port); connections made from now on go there.
func (l *Link) SetTarget(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.target = addr
}

// Name is "from->to".
func (l *Link) Name() string { return l.From + "->" + l.To }

// Close stops the proxy and closes every connection.
func (l *Link) Close() {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.ln.Close()
	l.wg.Wait()
}

// SetCut cuts or restores the link.
func (l *Link) SetCut(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = on
	if on {
		for c := range l.conns {
			c.Close()
		}
	}
}

// SetStall holds back the bytes of one direction (up: dialer to
// listener).
func (l *Link) SetStall(up, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if up {
		l.stallUp = on
	} else {
		l.stallDown = on
	}
}

// SetDelay sets the delay added to every forwarded read.
func (l *Link) SetDelay(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delay = d
}

// SetDrop sets the probability that a forwarded read resets the connection.
func (l *Link) SetDrop(p float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop = p
}

// SetDup turns replays of finished connections on or off.
func (l *Link) SetDup(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dup = on
}

// Heal removes every fault.
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut, l.stallUp, l.stallDown, l.delay, l.drop, l.dup = false, false, false, 0, 0, false
}

// Counts returns connections accepted, refused (cut), reset (drop) and
// replayed (duplicate).
func (l *Link) Counts() (accepted, refused, dropped, replayed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, l.refused, l.dropped, l.replayed
}

func (l *Link) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Link) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *Link) serve() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		cut := l.cut
		if cut {
			l.refused++
		} else {
			l.accepted++
		}
		l.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.pipe(c)
		}()
	}
}

// pipe forwards one connection.
func (l *Link) pipe(down net.Conn) {
	up, err := net.DialTimeout("tcp", l.Target(), 2*time.Second)
	if err != nil {
		down.Close()
		return
	}
	if !l.track(down) || !l.track(up) {
		down.Close()
		up.Close()
		return
	}
	var rec []byte
	var recMu sync.Mutex
	done := make(chan bool, 2) // true: a clean half-close
	go func() {                // dialer to listener
		done <- l.forward(down, up, true, func(b []byte) {
			recMu.Lock()
			if len(rec)+len(b) <= maxRecord {
				rec = append(rec, b...)
			}
			recMu.Unlock()
		})
	}()
	go func() { // listener to dialer
		done <- l.forward(up, down, false, nil)
	}()
	if clean := <-done; clean {
		<-done
		down.Close()
		up.Close()
	} else {
		down.Close()
		up.Close()
		<-done
	}
	l.untrack(down)
	l.untrack(up)
	l.mu.Lock()
	replay := l.dup && !l.cut && !l.closed
	if replay {
		l.replayed++
	}
	l.mu.Unlock()
	if replay {
		recMu.Lock()
		b := rec
		recMu.Unlock()
		l.replay(b)
	}
}

// forward copies src to dst, applying the link's faults; it returns when
// either side fails or the link resets the connection (false), or when src
// ended cleanly and the end was passed on (true).
func (l *Link) forward(src, dst net.Conn, up bool, record func([]byte)) bool {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for {
				l.mu.Lock()
				stalled := (up && l.stallUp) || (!up && l.stallDown)
				gone := l.cut || l.closed
				l.mu.Unlock()
				if gone {
					return false
				}
				if !stalled {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			l.mu.Lock()
			delay := l.delay
			drop := l.drop > 0 && l.rng.Float64() < l.drop
			if drop {
				l.dropped++
			}
			l.mu.Unlock()
			if delay > 0 {
				time.Sleep(delay)
			}
			if drop {
				// Forward a prefix, then reset: the peer sees a cut
				// mid-message.
				k := n / 2
				dst.Write(buf[:k])
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				return false
			}
			if record != nil {
				record(buf[:n])
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Half-close: pass the end on, keep the other way open.
				if tc, ok := dst.(*net.TCPConn); ok {
					return tc.CloseWrite() == nil
				}
			}
			return false
		}
	}
}

// replay sends b on a fresh connection to the listener and discards the
// answers.
func (l *Link) replay(b []byte) {
	if len(b) == 0 {
		return
	}
	c, err := net.DialTimeout("tcp", l.Target(), 2*time.Second)
	if err != nil {
		return
	}
	if !l.track(c) {
		c.Close()
		return
	}
	defer l.untrack(c)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write(b)
	io.Copy(io.Discard, c)
}
