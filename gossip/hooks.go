package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/ugorji/go/codec"
)

// hooks implements memberlist's Delegate, EventDelegate, AliveDelegate and
// MergeDelegate for a Gossip. memberlist calls most of these under its own
// locks: they only take g.mu, never call back into memberlist, and hand
// anything slow to a dispatcher.
type hooks struct{ g *Gossip }

var (
	_ memberlist.Delegate      = (*hooks)(nil)
	_ memberlist.EventDelegate = (*hooks)(nil)
	_ memberlist.AliveDelegate = (*hooks)(nil)
	_ memberlist.MergeDelegate = (*hooks)(nil)
)

// NodeMeta returns the encoded Meta, validated to fit at New.
func (h *hooks) NodeMeta(limit int) []byte {
	if len(h.g.metaBytes) > limit {
		return nil
	}
	return h.g.metaBytes
}

// NotifyMsg decodes a user message (broadcast or direct), drops duplicates
// and stale versions, queues broadcasts for relay and hands the payload to
// the message dispatcher.
func (h *hooks) NotifyMsg(buf []byte) {
	g := h.g
	if g.closed.Load() {
		return
	}
	e, err := decodeEnvelope(buf)
	if err != nil {
		g.msgsDropped.Add(1)
		return
	}
	if e.origin == g.name {
		return // our own broadcast, relayed back
	}
	if e.kind != kindDirect {
		k := queueName(e.kind, e.origin, e.key)
		g.mu.Lock()
		if last, ok := g.seen[k]; ok && e.seq <= last {
			g.mu.Unlock()
			return
		}
		if _, ok := g.seen[k]; !ok {
			g.seenFIFO = append(g.seenFIFO, k)
			if len(g.seenFIFO) > maxDedupe {
				delete(g.seen, g.seenFIFO[0])
				g.seenFIFO = g.seenFIFO[1:]
			}
		}
		g.seen[k] = e.seq
		g.mu.Unlock()
		// Relay: memberlist only gossips a broadcast from the node that
		// queued it, which does not reach every node of a large cluster.
		g.queue.push(k, append([]byte(nil), buf...))
		if e.kind == kindLeave {
			g.markLeft(e.origin)
			return
		}
	}
	if g.msgs.push(message{from: e.origin, payload: append([]byte(nil), e.payload...)}) {
		g.received.Add(1)
	}
}

// GetBroadcasts hands queued broadcasts to memberlist; none while offline,
// so that they wait for the network instead of being lost at the gate.
func (h *hooks) GetBroadcasts(overhead, limit int) [][]byte {
	if !h.g.gate.Online() {
		return nil
	}
	return h.g.queue.get(overhead, limit)
}

// digest is the whole of push/pull's user state: who we are, never data
// (push/pull state travels on every join and push/pull; bulk data goes over
// the sync package's streams).
type digest struct {
	ClusterID string
	Proto     uint16
}

func encodeDigest(m Meta) []byte {
	var b []byte
	_ = codec.NewEncoderBytes(&b, mh).Encode(&digest{m.ClusterID, m.Proto})
	return b
}

// LocalState returns the digest.
func (h *hooks) LocalState(join bool) []byte { return h.g.digest }

// MergeRemoteState checks a peer's digest. The merge delegate has refused
// foreign clusters already; a mismatch here is only logged.
func (h *hooks) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 || len(buf) > MetaMaxSize {
		return
	}
	var d digest
	if err := codec.NewDecoderBytes(buf, mh).Decode(&d); err != nil {
		h.g.log.Debug("undecodable push/pull digest", "error", err)
		return
	}
	if d.ClusterID != h.g.cfg.Meta.ClusterID || !Compatible(d.Proto, h.g.cfg.Meta.Proto) {
		h.g.log.Warn("push/pull digest from another cluster or protocol", "cluster", d.ClusterID, "proto", d.Proto)
	}
}

// check decides whether the node name with meta may be a member.
func (g *Gossip) check(name string, meta []byte) error {
	if name == g.name {
		return nil
	}
	if !validName(name) {
		return fmt.Errorf("invalid node name %q", name)
	}
	m, err := DecodeMeta(meta)
	if err != nil {
		return err
	}
	if m.ClusterID != g.cfg.Meta.ClusterID {
		return fmt.Errorf("cluster id %q, want %q", m.ClusterID, g.cfg.Meta.ClusterID)
	}
	if !Compatible(m.Proto, g.cfg.Meta.Proto) {
		return fmt.Errorf("protocol version %d incompatible with %d", m.Proto, g.cfg.Meta.Proto)
	}
	return nil
}

// refuse counts a refusal and logs it at warn level the first time for a
// node name.
func (g *Gossip) refuse(n *memberlist.Node, reason error) error {
	g.refused.Add(1)
	g.mu.Lock()
	_, logged := g.refusals[n.Name]
	if !logged {
		if len(g.refusals) >= maxRefusalsLogged {
			clear(g.refusals)
		}
		g.refusals[n.Name] = struct{}{}
	}
	g.mu.Unlock()
	if !logged {
		g.log.Warn("refusing node", "node", n.Name, "addr", nodeAddr(n), "reason", reason.Error())
	}
	return fmt.Errorf("gossip: refusing node %s: %w", n.Name, reason)
}

// NotifyAlive refuses nodes of another cluster, of an incompatible protocol
// or with undecodable meta.
func (h *hooks) NotifyAlive(n *memberlist.Node) error {
	if err := h.g.check(n.Name, n.Meta); err != nil {
		return h.g.refuse(n, err)
	}
	return nil
}

// NotifyMerge refuses a push/pull merge that lists any node NotifyAlive
// would refuse: the remote side belongs to another cluster.
func (h *hooks) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := h.g.check(n.Name, n.Meta); err != nil {
			return h.g.refuse(n, err)
		}
	}
	return nil
}

var errNoMeta = errors.New("gossip: member without decodable meta")

func nodeAddr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// update records n (copied) with state and queues an event.
func (h *hooks) update(n *memberlist.Node, state State, kind EventKind) {
	g := h.g
	meta, err := DecodeMeta(n.Meta)
	g.mu.Lock()
	e, ok := g.members[n.Name]
	if err != nil {
		if !ok {
			g.mu.Unlock()
			g.log.Warn("ignoring member", "node", n.Name, "error", errNoMeta)
			return
		}
		meta = e.m.Meta // a leave may carry no meta; keep what we had
	}
	if !ok {
		e = &memberEntry{}
		g.members[n.Name] = e
	}
	e.m = Member{Name: n.Name, Addr: nodeAddr(n), Meta: meta, State: state}
	if state == StateAlive || !ok {
		e.seen = time.Now()
	}
	if state != StateDead {
		delete(g.leaving, n.Name)
	}
	m := e.m
	g.mu.Unlock()
	g.events.push(memberEvent{m: m, kind: kind})
}

// NotifyJoin records a joined member.
func (h *hooks) NotifyJoin(n *memberlist.Node) { h.update(n, StateAlive, EventJoin) }

// NotifyUpdate records a member's new meta or address.
func (h *hooks) NotifyUpdate(n *memberlist.Node) { h.update(n, StateAlive, EventUpdate) }

// NotifyLeave records a member that left or was declared dead. n.State is
// not usable (memberlist never updates it): a member is StateLeft if its
// leave notice arrived first, and becomes so if it arrives later.
func (h *hooks) NotifyLeave(n *memberlist.Node) {
	st := StateDead
	h.g.mu.Lock()
	if _, ok := h.g.leaving[n.Name]; ok {
		st = StateLeft
	}
	h.g.mu.Unlock()
	h.update(n, st, EventLeave)
}

// markLeft records a leave notice from name: a dead member becomes left, an
// alive one will be left when memberlist reports it gone.
func (g *Gossip) markLeft(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.members[name]; ok && e.m.State == StateDead {
		e.m.State = StateLeft
		return
	}
	if len(g.leaving) >= maxRefusalsLogged {
		clear(g.leaving)
	}
	g.leaving[name] = struct{}{}
}
