package replication

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/replicad/replicad/internal/netguard"
)

// Serve accepts sessions on l until it is closed. Temporary errors (out
// of descriptors, an aborted connection) are retried with a backoff and
// logged at ERROR (throttled): they never stop the listener.
func (e *Engine) Serve(l net.Listener) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if netguard.Temporary(err) {
				delay = min(max(2*delay, netguard.MinBackoff), netguard.MaxBackoff)
				if ok, n := e.acceptErrs.Allow(); ok {
					e.log.Error("accepting sync connections failed; retrying", "error", err, "retry_in", delay, "suppressed", n)
				}
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		// Counted under e.mu, so that no session starts once Close has
		// begun waiting (a connection accepted meanwhile is closed).
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			continue
		}
		e.wg.Add(1)
		e.mu.Unlock()
		go func() {
			defer e.wg.Done()
			e.serveConn(c)
		}()
	}
}

func (e *Engine) serveConn(c net.Conn) {
	l := &e.cfg.Local
	start, remote := time.Now(), ""
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	var (
		s     *Session
		serr  error
		watch bool // a watch connection: no session to report
	)
	defer func() {
		if !watch {
			e.report(false, remote, start, s, serr)
		}
	}()
	refuse := func(reason string, retry uint32) {
		serr = &RefusedError{Reason: reason, RetryAfter: retry}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		// Read the hello first so the refusal is an answer, not a reset.
		c.SetReadDeadline(time.Now().Add(time.Second))
		readMsg(c, helloLimits(e.cfg.MaxHelloBytes))
		WriteMsg(c, Refuse(reason, retry))
		c.Close()
		l.counters().HandshakesRefused.Add(1)
	}
	if !e.Online() {
		refuse(RefusedOffline, 5000)
		return
	}
	// Per host first, so that one host's flood cannot take every slot.
	host := remoteHost(c)
	if !e.waitHost(host) {
		e.log.Warn("session refused: too many from one host", "remote", c.RemoteAddr(), "limit", e.cfg.MaxSessionsPerHost)
		refuse(RefusedBusy, 2000)
		return
	}
	hostHeld := true
	defer func() {
		if hostHeld {
			e.leaveHost(host)
		}
	}()
	// A watch connection takes no session slot, and leaves its host's
	// share once it spoke (watch.go).
	first, pc, perr := e.peekHello(c)
	if perr != nil {
		serr = perr
		e.log.Warn("incoming session failed", "remote", c.RemoteAddr(), "error", perr)
		c.Close()
		return
	}
	if first.Hello != nil && first.Hello.Watch {
		watch = true
		e.leaveHost(host)
		hostHeld = false
		e.serveWatch(c, first.Hello)
		return
	}
	raw := c // what Authenticate inspects (a TLS connection)
	c = pc
	// All slots taken: wait a little for one (sessions are short; a
	// fleet syncing at once queues instead of retrying a second later),
	// then refuse with a retry delay.
	select {
	case e.sem <- struct{}{}:
	default:
		t := time.NewTimer(e.cfg.SlotWait)
		select {
		case e.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			e.log.Debug("session refused: busy", "remote", c.RemoteAddr())
			refuse(RefusedBusy, 1000)
			return
		}
	}
	defer func() { <-e.sem }()
	if !e.track(c) {
		c.Close()
		return
	}
	defer e.untrack(c)
	sl := e.enter()
	defer sl.leave()
	s = NewSession(l, false)
	e.authenticate(s, raw)
	s.Admit = sl.admit
	defer e.watchProgress(c, s)()
	hello := e.cfg.HandshakeTimeout
	if sl.reserved {
		hello = min(hello, e.cfg.ReserveHelloTimeout)
	}
	// A hub that dialed in brings the horizon only if TLS proved its role.
	s.TrustHorizon = func(Peer) bool { return e.cfg.Authenticate != nil }
	err := RunConn(context.Background(), c, s, ConnOptions{IdleTimeout: e.cfg.IdleTimeout, HandshakeTimeout: hello,
		MaxHelloBytes: e.cfg.MaxHelloBytes, buffers: e.buffers})
	serr = err
	p := s.Peer()
	if err != nil {
		e.log.Warn("incoming session failed", "remote", c.RemoteAddr(), "peer", p.Node, "error", err)
		return
	}
	e.remember(p.Node)
	st := s.Snapshot()
	e.log.Debug("incoming session done", "peer", p.Node, "received", st.WritesApplied, "sent", st.WritesSent)
	e.stepCollector()
}

// remoteHost is the IP a connection comes from ("" if unknown).
func remoteHost(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		if h, _, err := net.SplitHostPort(a.String()); err == nil {
			return h
		}
		return a.String()
	}
	return ""
}

func (e *Engine) enterHost(h string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.perHost == nil {
		e.perHost = map[string]int{}
	}
	if e.perHost[h] >= e.cfg.MaxSessionsPerHost {
		return false
	}
	e.perHost[h]++
	return true
}

// waitHost is enterHost, waiting up to SlotWait for the host's sessions
// to drop under the limit (a fleet behind one address syncing at once
// queues briefly instead of retrying later); at most 4 x MaxSessions
// connections of one host wait, the others are refused at once.
func (e *Engine) waitHost(h string) bool {
	if e.enterHost(h) {
		return true
	}
	e.mu.Lock()
	if e.hostWait == nil {
		e.hostWait = map[string]int{}
	}
	if e.hostWait[h] >= 4*e.cfg.MaxSessions {
		e.mu.Unlock()
		return false
	}
	e.hostWait[h]++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.hostWait[h]--; e.hostWait[h] <= 0 {
			delete(e.hostWait, h)
		}
		e.mu.Unlock()
	}()
	for end := time.Now().Add(e.cfg.SlotWait); time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		if e.enterHost(h) {
			return true
		}
	}
	return false
}

func (e *Engine) leaveHost(h string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.perHost[h]--; e.perHost[h] <= 0 {
		delete(e.perHost, h)
	}
}

func (e *Engine) authenticate(s *Session, c net.Conn) {
	if f := e.cfg.Authenticate; f != nil {
		s.Authenticate = func(p Peer) error { return f(c, p) }
	}
}

// stepCollector advances tombstone collection after a session.
func (e *Engine) stepCollector() {
	if e.cfg.Collector == nil {
		return
	}
	if _, err := e.cfg.Collector.Step(); err != nil {
		e.log.Warn("tombstone collection failed", "error", err)
	}
}

// track registers c, a session's connection, for Close to cut and wait
// for (false: the engine is closed or offline; c is not to be used).
// Every tracked connection is untracked once its session and what
// follows it are over: Close waits for that (served, dialed and watch
// sessions alike), so the store outlives them.
func (e *Engine) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || !e.online {
		return false
	}
	e.inflight[c] = struct{}{}
	e.wg.Add(1) // under mu, before closed is set: never after Close's Wait began
	return true
}

func (e *Engine) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.inflight, c)
	e.mu.Unlock()
	e.wg.Done()
}
