// Package netguard keeps a server's accept loop alive and its descriptors
// bounded when clients are hostile: Wrap returns a net.Listener whose
// Accept retries temporary errors (descriptor exhaustion, aborted
// connections) with a backoff instead of returning them, logging them at
// ERROR at most once per interval, and closes at once the connections
// beyond a bound on those open. Throttle rate-limits any repeated log line
// and counts what it suppressed.
package netguard

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Accept backoff after a temporary error, as net/http's: 5 ms doubling to
// 1 s; reset by the next accepted connection.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// LogInterval is how often one throttled log line is written at most.
const LogInterval = 10 * time.Second

// Temporary reports whether an Accept error is worth retrying: the
// process or system ran out of descriptors or buffers, a connection was
// aborted before it was accepted, or a deadline/timeout.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Listener is a guarded listener (see Wrap).
type Listener struct {
	net.Listener
	name     string
	log      hclog.Logger
	max      int64
	open     atomic.Int64
	accErr   Throttle
	full     Throttle
	retries  atomic.Uint64
	refused  atomic.Uint64
	closedCh chan struct{}
	once     sync.Once
}

// Wrap guards l: name says which listener in log lines ("api", "sync");
// max bounds the connections open at once (0: no bound), a connection
// accepted beyond it is closed at once (logged at WARN, throttled).
func Wrap(l net.Listener, name string, max int, log hclog.Logger) *Listener {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Listener{Listener: l, name: name, log: log, max: int64(max), closedCh: make(chan struct{})}
}

// Accept returns the next connection within the bound. Temporary errors
// are retried after a backoff (5 ms doubling to 1 s) and logged at ERROR
// (throttled); only a closed listener or a permanent error is returned.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !Temporary(err) {
				return nil, err
			}
			delay = min(max(2*delay, MinBackoff), MaxBackoff)
			l.retries.Add(1)
			if ok, n := l.accErr.Allow(); ok {
				l.log.Error("accepting connections failed; retrying", "listener", l.name, "error", err, "retry_in", delay, "suppressed", n)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closedCh:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if l.max > 0 && l.open.Load() >= l.max {
			l.refused.Add(1)
			c.Close()
			if ok, n := l.full.Allow(); ok {
				l.log.Warn("connection closed: too many open connections", "listener", l.name, "max", l.max, "remote", c.RemoteAddr().String(), "suppressed", n)
			}
			continue
		}
		l.open.Add(1)
		return &conn{Conn: c, l: l}, nil
	}
}

// Close closes the listener and ends a pending backoff.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closedCh) })
	return l.Listener.Close()
}

// Open returns the number of connections accepted and not closed yet.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Retries returns the number of temporary Accept errors retried.
func (l *Listener) Retries() uint64 { return l.retries.Load() }

// Refused returns the number of connections closed for the bound.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// Unwrap returns the connection accepted from the wrapped listener.
func (c *conn) Unwrap() net.Conn { return c.Conn }

// Throttle lets one event through per LogInterval (the first at once) and
// counts the ones it held back. The zero value is ready.
type Throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
	// Interval overrides LogInterval when set.
	Interval time.Duration
}

// Allow reports whether to log now and, if so, how many events were
// suppressed since the last one logged.
func (t *Throttle) Allow() (bool, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	iv := t.Interval
	if iv == 0 {
		iv = LogInterval
	}
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < iv {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	return true, n
}

// Pending returns the number of events held back since the last one let
// through (reported by the next Allow that lets one through).
func (t *Throttle) Pending() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.suppressed
}

// MaxThrottleKeys bounds the keys a KeyedThrottle remembers: beyond it
// (a flood of distinct claimed node ids) it starts afresh, so at worst
// one more line per key is logged.
const MaxThrottleKeys = 4096

// KeyedThrottle is a Throttle per key (a peer, an origin): each key's
// events are logged at most once per interval, with the count of those
// held back since.
type KeyedThrottle[K comparable] struct {
	// Interval overrides LogInterval when set.
	Interval time.Duration

	mu sync.Mutex
	by map[K]*Throttle
}

// Allow reports whether to log key's event now and, if so, how many of
// key's events were held back since the last one logged.
func (t *KeyedThrottle[K]) Allow(key K) (bool, uint64) {
	t.mu.Lock()
	th := t.by[key]
	if th == nil {
		if t.by == nil || len(t.by) >= MaxThrottleKeys {
			t.by = map[K]*Throttle{}
		}
		th = &Throttle{Interval: t.Interval}
		t.by[key] = th
	}
	t.mu.Unlock()
	return th.Allow()
}
