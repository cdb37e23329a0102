package netguard

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// fakeListener returns errs in order, then accepts from a real listener.
type fakeListener struct {
	net.Listener
	errs []error
}

func (f *fakeListener) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	aborted := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	l := Wrap(&fakeListener{Listener: real, errs: []error{emfile, emfile, aborted}}, "test", 1, nil)
	defer l.Close()
	go net.Dial("tcp", real.Addr().String())
	start := time.Now()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after temporary errors: %v", err)
	}
	// 5 + 10 + 20 ms of backoff.
	if d := time.Since(start); d < 35*time.Millisecond || l.Retries() != 3 {
		t.Errorf("accepted after %v and %d retries, want >= 35ms and 3", d, l.Retries())
	}
	// The bound (1): a second connection is closed at once; once the
	// first closes, the next is accepted.
	c2, err := net.Dial("tcp", real.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	done := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); done <- c }()
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection beyond the bound: read %v, want it closed", err)
	}
	if l.Refused() != 1 || l.Open() != 1 {
		t.Errorf("refused %d open %d, want 1 and 1", l.Refused(), l.Open())
	}
	c.Close()
	c.Close() // counted once
	net.Dial("tcp", real.Addr().String())
	select {
	case c3 := <-done:
		if c3 == nil || l.Open() != 1 {
			t.Fatalf("after the first closed: %v, open %d", c3, l.Open())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted once the first closed")
	}
	// A permanent error is returned; Close ends Accept.
	perm := errors.New("permanent")
	l2 := Wrap(&fakeListener{Listener: real, errs: []error{perm}}, "test", 0, nil)
	if _, err := l2.Accept(); err != perm {
		t.Errorf("permanent error: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	th := Throttle{Interval: time.Hour}
	if ok, n := th.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := th.Allow(); ok {
			t.Fatal("let through within the interval")
		}
	}
	if th.Pending() != 5 {
		t.Errorf("pending %d", th.Pending())
	}
	th.Interval = time.Nanosecond
	time.Sleep(time.Millisecond)
	if ok, n := th.Allow(); !ok || n != 5 {
		t.Errorf("after the interval: %v %d, want true 5", ok, n)
	}
}

func TestKeyedThrottle(t *testing.T) {
	var th KeyedThrottle[string]
	th.Interval = time.Hour
	if ok, _ := th.Allow("a"); !ok {
		t.Fatal("a's first event held back")
	}
	if ok, _ := th.Allow("b"); !ok {
		t.Fatal("b's first event held back by a's")
	}
	for i := 0; i < 3; i++ {
		if ok, _ := th.Allow("a"); ok {
			t.Fatal("a let through within the interval")
		}
	}
	// Beyond MaxThrottleKeys keys it starts afresh: bounded memory.
	for i := 0; i < MaxThrottleKeys+10; i++ {
		th.Allow(string(rune('A'+i%26)) + time.Duration(i).String())
	}
	th.mu.Lock()
	n := len(th.by)
	th.mu.Unlock()
	if n > MaxThrottleKeys {
		t.Errorf("%d keys remembered, want at most %d", n, MaxThrottleKeys)
	}
}
