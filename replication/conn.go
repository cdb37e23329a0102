package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ConnOptions bound a session over a connection.
type ConnOptions struct {
	// IdleTimeout bounds the wait for the peer's next message and for
	// each write (default 30s).
	IdleTimeout time.Duration
	// HandshakeTimeout, if set, bounds the wait for the peer's first
	// message (its Hello or Welcome) instead of IdleTimeout, so that
	// connections that never speak free their slot soon.
	HandshakeTimeout time.Duration
	// Progress, if set, is called after each message handled, with the
	// session's stats so far (for progress bars; called on the session's
	// goroutine).
	Progress func(Stats)
	// MaxHelloBytes, if set, bounds the listener's first message (the
	// peer's Hello): one frame of at most this many bytes, no fragments.
	MaxHelloBytes int

	buffers *byteBudget // reassembly bytes shared with other sessions
}

// RunConn runs s over conn until the session finishes, fails, or ctx is
// done, then closes conn. It writes from a goroutine of its own so that
// both sides can stream at once without deadlock; the protocol's window
// bounds what is queued. A malformed or oversized frame, a protocol
// violation or a timeout ends the session with an error naming the cause.
func RunConn(ctx context.Context, conn net.Conn, s *Session, opts ConnOptions) (err error) {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.SetDeadline(time.Unix(1, 0)) // unblock reads and writes
	}()

	out := make(chan Msg, 4*Window+16)
	writeErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range out {
			conn.SetWriteDeadline(time.Now().Add(opts.IdleTimeout))
			n, err := WriteMsg(conn, m)
			s.addSent(n)
			if err != nil {
				writeErr <- fmt.Errorf("replication: write %v: %w", m.Type(), err)
				cancel()
				for range out {
				}
				return
			}
		}
	}()
	finish := func(e error) error {
		close(out)
		wg.Wait()
		select {
		case we := <-writeErr:
			if e == nil || errors.Is(e, context.Canceled) || isTimeout(e) {
				e = we
			}
		default:
		}
		if e == nil && ctx.Err() != nil && !s.Finished() {
			e = ctx.Err()
		}
		return e
	}
	send := func(ms []Msg) {
		for _, m := range ms {
			out <- m
		}
	}
	send(s.Start())
	for !s.Finished() {
		wait := opts.IdleTimeout
		if opts.HandshakeTimeout > 0 && s.phase == phaseHandshake {
			wait = opts.HandshakeTimeout
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		lim := readLimits{budget: opts.buffers}
		if s.phase == phaseHandshake && !s.dialer && opts.MaxHelloBytes > 0 {
			lim = helloLimits(opts.MaxHelloBytes)
		}
		m, n, err := readMsg(conn, lim)
		s.addReceived(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("replication: peer closed the connection")
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return finish(err)
		}
		ms, err := s.Handle(m)
		send(ms)
		if opts.Progress != nil {
			opts.Progress(s.Snapshot())
		}
		if err != nil {
			return finish(err)
		}
	}
	return finish(nil)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Session) addSent(n int) {
	s.mu.Lock()
	s.Stats.BytesSent += uint64(n)
	s.mu.Unlock()
}

func (s *Session) addReceived(n int) {
	s.mu.Lock()
	s.Stats.BytesReceived += uint64(n)
	s.mu.Unlock()
}

// Snapshot returns the session's stats; safe while RunConn runs, from the
// goroutine that called it or from a Progress callback.
func (s *Session) Snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Stats
}
