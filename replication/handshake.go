package replication

import (
	"errors"
	"fmt"

	"github.com/replicad/replicad/hlc"
)

// Refusal codes: all a refused peer is told of why. The refusal carries
// nothing of this node (no cluster id, node id or role): the details are
// logged on the refusing side only.
const (
	RefusedBusy     = "busy"
	RefusedOffline  = "offline"
	RefusedProtocol = "protocol version mismatch"
	RefusedCluster  = "cluster id mismatch"
	RefusedIdentity = "node id or role refused"
	RefusedAuth     = "not authenticated"
	RefusedNoWatch  = "this node serves no watch connections"
	// RefusedStore: this node's store lacks what the scopes of the
	// session need (Capabilities.Need).
	RefusedStore = "this node's store cannot serve these scopes"
)

// Refuse builds the Welcome that refuses a session before it starts: the
// protocol version, a refusal code and a retry delay, nothing else.
func Refuse(code string, retryAfterMs uint32) Msg {
	return Msg{Welcome: &Welcome{Proto: ProtocolVersion, Refused: code, RetryAfterMs: retryAfterMs}}
}

func (s *Session) handshake(m Msg) ([]Msg, error) {
	var p Peer
	var proto uint16
	switch {
	case !s.dialer && m.Hello != nil:
		h := m.Hello
		p, proto = Peer{Node: hlc.NodeID(h.Node), Cluster: h.Cluster, Role: h.Role, Scope: h.Scope, SkewMs: h.PhysMs - s.l.Clock.Physical(), Version: h.Version}, h.Proto
	case s.dialer && m.Welcome != nil:
		w := m.Welcome
		if w.Refused != "" {
			s.phase = phaseFinished
			return nil, &RefusedError{Reason: w.Refused, RetryAfter: w.RetryAfterMs}
		}
		p, proto = Peer{Node: hlc.NodeID(w.Node), Cluster: w.Cluster, Role: w.Role, Scope: w.Scope, SkewMs: w.PhysMs - s.l.Clock.Physical(),
			Version: w.Version, APIAddr: w.APIAddr, GossipAddr: w.GossipAddr, Arbiter: w.Arbiter, Decided: w.Decided}, w.Proto
	default:
		return nil, fmt.Errorf("%w: %v during the handshake", ErrProtocol, m.Type())
	}
	code, reason := s.refusal(p, proto)
	if reason == "" && !s.dialer && s.Admit != nil {
		if err := s.Admit(p); err != nil {
			s.phase = phaseFinished
			var re *RefusedError
			if errors.As(err, &re) {
				s.l.counters().HandshakesRefused.Add(1)
				return []Msg{Refuse(re.Reason, re.RetryAfter)}, err
			}
			return nil, err
		}
	}
	if reason == "" && !s.dialer {
		// The Hello's filters, compiled now that the peer is accepted.
		if err := p.Scope.Validate(); err != nil {
			s.phase = phaseFinished
			return nil, fmt.Errorf("%w: hello: %v", ErrProtocol, err)
		}
	}
	if reason != "" {
		// The peer is told the code only; the details stay in this
		// node's error (logged by the caller).
		s.phase = phaseFinished
		if s.dialer {
			return []Msg{{Error: &ErrorMsg{Reason: "session refused: " + code}}}, &RefusedError{Reason: reason}
		}
		s.l.counters().HandshakesRefused.Add(1)
		return []Msg{Refuse(code, 0)}, &RefusedError{Reason: reason}
	}
	var assigned *Scope
	if !s.dialer && s.l.Assign != nil {
		// The hub enforces the peer's offline profile, whatever it declared.
		if sc, ok := s.l.Assign(p); ok {
			p.Scope, assigned = sc, &sc
		}
	}
	if s.l.Limit != nil {
		// What the peer may read bounds what it is served, whoever
		// dialed (scope_fields.go).
		if lim, ok := s.l.Limit(p); ok {
			p.Scope = p.Scope.Restrict(lim)
		}
	}
	if s.dialer && m.Welcome.Assigned != nil {
		s.adopt(*m.Welcome.Assigned)
	}
	if err := s.l.Capabilities().Need(s.l.scope(), p.Scope); err != nil {
		// Refused loudly: serving the session would give the peer, or
		// this replica, wrong listings (records leaving a scope) or
		// records this replica cannot hide.
		s.phase = phaseFinished
		s.l.Log.Error("session refused: the store lacks a capability the scopes need", "peer", p.Node, "error", err)
		if s.dialer {
			return []Msg{{Error: &ErrorMsg{Reason: "session refused: " + RefusedStore}}}, err
		}
		return []Msg{Refuse(RefusedStore, 0)}, err
	}
	s.peer = p
	s.phase = phaseExchange
	if s.l.Filter != nil {
		s.wf = s.l.Filter(p)
	}
	var out []Msg
	if !s.dialer {
		wm := &Welcome{Proto: ProtocolVersion, Cluster: s.l.Cluster, Node: uint64(s.l.Node), Role: s.l.Role, Scope: s.l.scope(), PhysMs: s.l.Clock.Physical(), Assigned: assigned, Version: s.l.Version}
		if s.l.Advertise != nil {
			wm.APIAddr, wm.GossipAddr = s.l.Advertise()
		}
		if s.l.Decided != nil {
			wm.Arbiter, wm.Decided = true, s.l.Decided(p.Node)
		}
		out = append(out, Msg{Welcome: wm})
	}
	h, err := s.l.Store.GCHorizon()
	if err != nil {
		return out, err
	}
	have := &Have{Origins: toWireHeld(s.l.Store.Holdings()), GC: vvToFlat(h)}
	if s.wf != nil {
		have.Accept = s.wf.wire()
	}
	have.Void = s.l.voids.wire()
	have.State = s.acceptsState()
	s.tookState = have.State != 0
	out = append(out, Msg{Have: have})
	return out, nil
}

// refusal checks a peer's handshake (version, cluster, node id, role,
// authentication): "" if accepted, else why it is refused. Sessions and
// watch connections (watch.go) check the same.
func (s *Session) refusal(p Peer, proto uint16) (code, reason string) {
	switch {
	case proto != ProtocolVersion:
		code, reason = RefusedProtocol, fmt.Sprintf("protocol version %d, this node speaks %d", proto, ProtocolVersion)
	case p.Cluster != s.l.Cluster:
		code, reason = RefusedCluster, fmt.Sprintf("cluster %q, this node is in cluster %q", p.Cluster, s.l.Cluster)
	case p.Node == s.l.Node:
		code, reason = RefusedIdentity, "same node id as this node"
	case p.Role != "hub" && p.Role != "device":
		code, reason = RefusedIdentity, fmt.Sprintf("unknown role %q", p.Role)
	case s.Authenticate != nil:
		if err := s.Authenticate(p); err != nil {
			code, reason = RefusedAuth, "not authenticated: "+err.Error()
		}
	}
	return code, reason
}
