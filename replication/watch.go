package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Watch connections: a node that dials hubs (Config.Watch) keeps one
// open with each, so that writes reach it about as soon as the hub holds
// them instead of at the next pull. The connection is not a session and
// holds no session slot: the dialer sends a Hello with Watch set, checked
// like a session's (version, cluster, node id, role, authentication over
// the same TLS); the listener answers a Welcome with Watch set, then both
// sides only send News. The listener sends one, shortly after it applies
// writes (local or remote) of origins other than the watcher's own in
// tables the watcher's scope lists, naming the origins' highest sequence
// numbers; the watcher runs an ordinary pull session with it when it
// lacks one (unless a failed or refused session with it is in backoff:
// the engine retries when it ends). Both sides send an empty News (a
// heartbeat) every Heartbeat and drop a connection silent for three.
// The listener serves one watch per node (a new one replaces the old)
// and ends each after WatchMaxAge, so that the TLS handshake of the next
// one checks the certificate again (revocation). The dialer reconnects
// with backoff and pulls once at every (re)connection, to catch up; a
// listener that predates watches runs a session instead (no
// Welcome.Watch), and the dialer then tries again only after
// PullInterval. A listener serves at most MaxWatchers at once; the
// others are refused with a retry delay.

// DefaultHeartbeat is the default period of a watch connection's
// heartbeats.
const DefaultHeartbeat = 15 * time.Second

// WatchMaxAge is how long a listener serves one watch connection.
const WatchMaxAge = 10 * time.Minute

// errNoWatch: the listener does not serve watch connections.
var errNoWatch = errors.New("replication: the peer does not serve watch connections")

// watcher is one watch connection served: the heads to announce.
type watcher struct {
	node  hlc.NodeID
	conn  net.Conn
	scope Scope
	mu    sync.Mutex
	heads map[hlc.NodeID]uint64
	kick  chan struct{}
}

// take returns the heads gathered since the last call, flattened.
func (w *watcher) take() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]uint64, 0, 2*len(w.heads))
	for o, s := range w.heads {
		out = append(out, uint64(o), s)
		delete(w.heads, o)
		if len(out) >= 2*maxNewsHeads {
			break // the rest in the next News
		}
	}
	if len(w.heads) > 0 {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return out
}

// Watchers returns the number of watch connections served now.
func (e *Engine) Watchers() int {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	return len(e.watchers)
}

// announce tells the watchers of writes this node now holds; res, if
// set, says which of writes were applied (the others are not news).
func (e *Engine) announce(writes []*crdt.Write, res *store.Result) {
	e.watchMu.Lock()
	if len(e.watchers) == 0 {
		e.watchMu.Unlock()
		return
	}
	ws := make([]*watcher, 0, len(e.watchers))
	for w := range e.watchers {
		ws = append(ws, w)
	}
	e.watchMu.Unlock()
	for _, wa := range ws {
		n := 0
		wa.mu.Lock()
		for i, w := range writes {
			if w == nil || res != nil && (i >= len(res.Status) || res.Status[i] != store.Applied) {
				continue
			}
			if w.Origin == wa.node || !wa.scope.lists([]byte(w.Table)) {
				continue
			}
			if w.Seq > wa.heads[w.Origin] {
				wa.heads[w.Origin] = w.Seq
			}
			n++
		}
		wa.mu.Unlock()
		if n > 0 {
			e.signal(wa.kick)
		}
	}
}

// peekConn is a connection whose first bytes were already read (the
// Hello, to tell a watch from a session); they are read again first.
type peekConn struct {
	net.Conn
	pending []byte
}

func (c *peekConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// recorder keeps what is read through it.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// peekHello reads the first message of an incoming connection, within
// HandshakeTimeout and the Hello limits (one frame of at most
// MaxHelloBytes, no fragments: limits.go). It returns the message and the
// connection to run a session on (which reads that message again).
func (e *Engine) peekHello(c net.Conn) (Msg, net.Conn, error) {
	c.SetReadDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	rec := &recorder{r: c}
	m, _, err := readMsg(rec, helloLimits(e.cfg.MaxHelloBytes))
	c.SetReadDeadline(time.Time{})
	return m, &peekConn{Conn: c, pending: rec.buf}, err
}

// serveWatch serves a watch connection whose Hello asked for one.
func (e *Engine) serveWatch(c net.Conn, h *Hello) {
	defer c.Close()
	l := &e.cfg.Local
	refuse := func(reason string, retry uint32) {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		WriteMsg(c, Refuse(reason, retry))
		l.counters().HandshakesRefused.Add(1)
	}
	if !e.track(c) {
		return
	}
	defer e.untrack(c)
	s := NewSession(l, false)
	e.authenticate(s, c)
	p := Peer{Node: hlc.NodeID(h.Node), Cluster: h.Cluster, Role: h.Role, Scope: h.Scope}
	if code, reason := s.refusal(p, h.Proto); reason != "" {
		e.log.Warn("watch connection refused", "remote", c.RemoteAddr(), "peer", p.Node, "reason", reason)
		refuse(code, 0) // the code only: nothing of this node
		return
	}
	if e.cfg.MaxWatchers <= 0 {
		refuse(RefusedNoWatch, 0)
		return
	}
	if l.Assign != nil {
		if sc, ok := l.Assign(p); ok {
			p.Scope = sc
		}
	}
	if l.Limit != nil {
		if lim, ok := l.Limit(p); ok {
			p.Scope = p.Scope.Restrict(lim)
		}
	}
	wa := &watcher{node: p.Node, conn: c, scope: p.Scope, heads: map[hlc.NodeID]uint64{}, kick: make(chan struct{}, 1)}
	e.watchMu.Lock()
	for old := range e.watchers {
		if old.node == wa.node {
			old.conn.Close() // one per node: the newer replaces it
			delete(e.watchers, old)
		}
	}
	full := len(e.watchers) >= e.cfg.MaxWatchers
	if !full {
		e.watchers[wa] = struct{}{}
	}
	e.watchMu.Unlock()
	if full {
		e.log.Debug("watch connection refused: busy", "remote", c.RemoteAddr(), "limit", e.cfg.MaxWatchers)
		refuse(fmt.Sprintf("busy: %d watch connections", e.cfg.MaxWatchers), 30000)
		return
	}
	defer func() {
		e.watchMu.Lock()
		delete(e.watchers, wa)
		e.watchMu.Unlock()
	}()
	wm := &Welcome{Proto: ProtocolVersion, Cluster: l.Cluster, Node: uint64(l.Node), Role: l.Role, Scope: l.scope(), PhysMs: l.Clock.Physical(), Version: l.Version, Watch: true}
	if l.Advertise != nil {
		wm.APIAddr, wm.GossipAddr = l.Advertise()
	}
	c.SetWriteDeadline(time.Now().Add(e.cfg.IdleTimeout))
	if _, err := WriteMsg(c, Msg{Welcome: wm}); err != nil {
		return
	}
	e.log.Debug("watch connection open", "peer", p.Node, "remote", c.RemoteAddr())
	age := time.AfterFunc(WatchMaxAge, func() { c.Close() })
	defer age.Stop()
	err := e.runWatch(c, nil, wa.kick, wa.take)
	e.log.Debug("watch connection closed", "peer", p.Node, "reason", err)
}

// runWatch runs a watch connection until it fails: it sends News when
// kicked (take gives the heads, after PushDelay to gather more) and
// heartbeats, and hands the News it reads to onNews. A connection silent
// for three heartbeats is dropped.
func (e *Engine) runWatch(c net.Conn, onNews func(*News), kick <-chan struct{}, take func() []uint64) error {
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c.SetReadDeadline(time.Now().Add(3 * e.cfg.Heartbeat))
			m, _, err := ReadMsg(c)
			if err == nil && m.News == nil {
				err = fmt.Errorf("%w: %v on a watch connection", ErrProtocol, m.Type())
			}
			if err != nil {
				errc <- err
				return
			}
			if onNews != nil {
				onNews(m.News)
			}
		}
	}()
	defer func() {
		c.Close()
		<-done
	}()
	hb := time.NewTicker(e.cfg.Heartbeat)
	defer hb.Stop()
	send := func(n *News) error {
		c.SetWriteDeadline(time.Now().Add(e.cfg.IdleTimeout))
		_, err := WriteMsg(c, Msg{News: n})
		return err
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-kick:
			t := time.NewTimer(e.cfg.PushDelay)
			select {
			case err := <-errc:
				t.Stop()
				return err
			case <-t.C:
			}
			if err := send(&News{Heads: take()}); err != nil {
				return err
			}
		case <-hb.C:
			if err := send(&News{}); err != nil {
				return err
			}
		}
	}
}

// watchHub keeps a watch connection with the hub at addr until ctx is
// done, reconnecting with backoff (see the comment at the top).
func (e *Engine) watchHub(ctx context.Context, addr string) {
	back := 500 * time.Millisecond
	for ctx.Err() == nil {
		wait := 250 * time.Millisecond
		if e.Online() {
			up, err := e.watchOnce(ctx, addr)
			if up {
				back = 500 * time.Millisecond
			}
			wait = back
			var re *RefusedError
			switch {
			case errors.As(err, &re) && re.RetryAfter > 0:
				wait = time.Duration(re.RetryAfter) * time.Millisecond
			case errors.Is(err, errNoWatch):
				wait = e.cfg.PullInterval
			}
			if !up {
				back = min(2*back, e.cfg.MaxBackoff)
			}
			if ctx.Err() == nil {
				e.log.Debug("watch connection ended", "hub", addr, "error", err, "retry_in", wait.String())
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// watchOnce runs one watch connection with the hub at addr; up says it
// was established.
func (e *Engine) watchOnce(ctx context.Context, addr string) (up bool, err error) {
	l := &e.cfg.Local
	dctx, cancel := context.WithTimeout(ctx, e.cfg.IdleTimeout)
	c, err := e.cfg.Dial(dctx, addr)
	cancel()
	if err != nil {
		return false, err
	}
	defer c.Close()
	if !e.track(c) {
		return false, errors.New("offline")
	}
	defer e.untrack(c)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetWriteDeadline(time.Now().Add(e.cfg.IdleTimeout))
	if _, err := WriteMsg(c, Msg{Hello: &Hello{Proto: ProtocolVersion, Cluster: l.Cluster, Node: uint64(l.Node), Role: l.Role, Scope: l.scope(), PhysMs: l.Clock.Physical(), Version: l.Version, Watch: true}}); err != nil {
		return false, err
	}
	c.SetReadDeadline(time.Now().Add(e.cfg.IdleTimeout))
	m, _, err := ReadMsg(c)
	if err != nil {
		return false, err
	}
	w := m.Welcome
	switch {
	case w == nil:
		return false, fmt.Errorf("%w: %v instead of a welcome", ErrProtocol, m.Type())
	case w.Refused != "":
		return false, &RefusedError{Reason: w.Refused, RetryAfter: w.RetryAfterMs}
	case !w.Watch:
		return false, errNoWatch
	}
	s := NewSession(l, true)
	e.authenticate(s, c)
	if code, reason := s.refusal(Peer{Node: hlc.NodeID(w.Node), Cluster: w.Cluster, Role: w.Role, Scope: w.Scope}, w.Proto); reason != "" {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		WriteMsg(c, Msg{Error: &ErrorMsg{Reason: "session refused: " + code}})
		return false, &RefusedError{Reason: reason}
	}
	// Pull on news, one session at a time, and once now to catch up.
	p := Partner{Addr: addr, Role: "hub"}
	pull := make(chan struct{}, 1)
	pull <- struct{}{}
	pctx, stopPull := context.WithCancel(ctx)
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		for {
			select {
			case <-pctx.Done():
				return
			case <-pull:
				ps := e.state(p)
				e.mu.Lock()
				backoff := ps.Failures > 0 && time.Now().Before(ps.NextTry)
				e.mu.Unlock()
				// A hub that refused or failed a session is left alone
				// until its backoff ends (the engine retries it then).
				if e.Online() && !backoff {
					if _, err := e.syncWith(ctx, p, ps, nil); err != nil {
						e.log.Debug("pull on news failed", "hub", addr, "error", err)
					}
				}
			}
		}
	}()
	defer func() {
		stopPull()
		<-pulled
	}()
	e.log.Debug("watch connection open", "hub", addr)
	return true, e.runWatch(c, func(n *News) {
		for i := 0; i+1 < len(n.Heads); i += 2 {
			o := hlc.NodeID(n.Heads[i])
			if o != l.Node && !e.holds(o, n.Heads[i+1]) {
				e.signal(pull)
				return
			}
		}
	}, nil, nil)
}
