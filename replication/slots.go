package replication

import (
	"net"
	"sync"
	"time"

	"github.com/replicad/replicad/hlc"
)

// Slot admission of incoming sessions (Engine.serveConn). Beyond the
// MaxSessions bound and the per-host share:
//
//   - Reserve: peers not known to this node (neither authenticated by
//     TLS, nor seen in an earlier successful session, nor the origin of
//     writes this replica holds, which survives a restart) hold at most
//     MaxSessions - ReservedSessions slots past their Hello. A connection
//     accepted while unknown sessions and connections that have not said
//     hello yet fill that share is in the reserve: it must say hello
//     within ReserveHelloTimeout, and is refused as busy if its Hello
//     names an unknown peer while unknown ones hold their share. So
//     strangers, idle or not, never keep the last slots: a returning
//     device gets one.
//   - Progress: an incoming session that moves fewer than MinSessionRate
//     bytes a second over a SessionRateWindow, or lasts longer than
//     MaxSessionTime, is cut and its slot freed (the peer resumes at its
//     next session: what was applied stays). A valid message now and then
//     does not keep a slot.

// Defaults of the slot knobs in Config.
const (
	DefaultMinSessionRate      = 1024 // bytes/s
	DefaultSessionRateWindow   = 30 * time.Second
	DefaultMaxSessionTime      = 15 * time.Minute
	DefaultReserveHelloTimeout = time.Second
	maxKnownPeers              = 1 << 16
)

// slotState is the engine's admission state (guarded by Engine.mu).
type slotState struct {
	pending int                     // incoming connections before their Hello
	strange int                     // incoming sessions of unknown peers, past their Hello
	known   map[hlc.NodeID]struct{} // peers of successful sessions
}

// unknownCap is how many slots unknown peers may hold.
func (e *Engine) unknownCap() int { return e.cfg.MaxSessions - e.cfg.ReservedSessions }

// slot is one incoming connection's standing.
type slot struct {
	e        *Engine
	pending  bool // counted in pending
	strange  bool // counted in strange
	reserved bool // taken into the reserve: a short wait for its Hello
}

// enter counts a new incoming connection as pending; it is in the reserve
// if unknown peers and pending connections already fill their share.
func (e *Engine) enter() *slot {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.slots.pending++
	return &slot{e: e, pending: true, reserved: e.slots.pending+e.slots.strange > e.unknownCap()}
}

// admit decides, at the Hello, whether the peer keeps its slot: a known
// peer does; an unknown one only within the unknown peers' share.
func (sl *slot) admit(p Peer) error {
	e := sl.e
	// A node whose writes this replica holds has been here, directly or
	// through others: known across restarts.
	wrote := e.cfg.Local.heldOf(p.Node).Max() > 0
	e.mu.Lock()
	defer e.mu.Unlock()
	e.slots.pending--
	sl.pending = false
	if _, seen := e.slots.known[p.Node]; e.cfg.Authenticate != nil || seen || wrote {
		return nil
	}
	if e.slots.strange >= e.unknownCap() {
		return &RefusedError{Reason: RefusedBusy, RetryAfter: 2000}
	}
	e.slots.strange++
	sl.strange = true
	return nil
}

// leave releases the connection's counts.
func (sl *slot) leave() {
	e := sl.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if sl.pending {
		e.slots.pending--
	}
	if sl.strange {
		e.slots.strange--
	}
}

// remember notes a peer of a successful session as known.
func (e *Engine) remember(n hlc.NodeID) {
	if n == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.slots.known == nil {
		e.slots.known = map[hlc.NodeID]struct{}{}
	}
	if len(e.slots.known) >= maxKnownPeers {
		for k := range e.slots.known { // forget one at random
			delete(e.slots.known, k)
			break
		}
	}
	e.slots.known[n] = struct{}{}
}

// watchProgress cuts the session on c if it moves too little or lasts too
// long; call the returned function when the session ends.
func (e *Engine) watchProgress(c net.Conn, s *Session) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		window := e.cfg.SessionRateWindow
		tick := time.NewTicker(window)
		defer tick.Stop()
		var end <-chan time.Time
		if e.cfg.MaxSessionTime > 0 {
			t := time.NewTimer(e.cfg.MaxSessionTime)
			defer t.Stop()
			end = t.C
		}
		var last uint64
		for {
			select {
			case <-done:
				return
			case <-end:
				e.cut(c, s, "the session lasted longer than "+e.cfg.MaxSessionTime.String())
				return
			case <-tick.C:
				st := s.Snapshot()
				moved := st.BytesSent + st.BytesReceived
				if e.cfg.MinSessionRate > 0 && float64(moved-last) < float64(e.cfg.MinSessionRate)*window.Seconds() {
					e.cut(c, s, "the session moved "+itoa(moved-last)+" bytes in "+window.String())
					return
				}
				last = moved
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

func (e *Engine) cut(c net.Conn, s *Session, why string) {
	e.cfg.Local.counters().SessionsCut.Add(1)
	e.log.Warn("incoming session cut to free its slot", "remote", c.RemoteAddr(), "peer", s.Peer().Node, "reason", why)
	c.Close()
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
