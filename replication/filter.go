package replication

import (
	"fmt"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// OriginMatch is a node id prefix: the node ids whose Bits leading bits
// equal Node's (Bits 64: exactly Node).
type OriginMatch struct {
	Node hlc.NodeID
	Bits int
}

// Matches reports whether n is under the prefix.
func (m OriginMatch) Matches(n hlc.NodeID) bool {
	if m.Bits >= 64 {
		return n == m.Node
	}
	if m.Bits <= 0 {
		return false
	}
	mask := ^uint64(0) << (64 - m.Bits)
	return uint64(n)&mask == uint64(m.Node)&mask
}

// WriteFilter restricts what a session takes from its peer. A node in a
// TLS cluster sets one for sessions with device peers (Local.Filter),
// whose writes no hub has judged yet: only writes of the origins it lists
// are taken, each judged by Check. A refused write is neither applied nor
// held (the receiver's holdings never claim it), so it is not lost: it
// arrives later from a hub (as the hub's skeleton if the hub rejected
// it). The origins are announced to the peer in the receiver's Have
// (Have.Accept), so the peer does not stream writes of other origins.
//
// With a filter, the session takes nothing from the peer that it cannot
// judge write by write: no whole records (a write whose predecessors are
// missing is dropped, not fetched from the peer; reconciliation and the
// refresh of hidden records are left to sessions with hubs), and empty
// ranges and skips only of accepted origins.
type WriteFilter struct {
	// Origins are the node id prefixes whose writes are taken; none:
	// nothing is taken.
	Origins []OriginMatch
	// Check, if set, returns why a write of an accepted origin is
	// refused, or "" to take it.
	Check func(w *crdt.Write) string
	// OnRefused, if set, is told of each refused write (for logs).
	OnRefused func(w *crdt.Write, reason string)
}

// Accepts reports whether the filter takes writes of origin.
func (f *WriteFilter) Accepts(origin hlc.NodeID) bool {
	if f == nil {
		return true
	}
	for _, m := range f.Origins {
		if m.Matches(origin) {
			return true
		}
	}
	return false
}

func (f *WriteFilter) wire() *AcceptOrigins {
	a := &AcceptOrigins{Nodes: make([]uint64, 0, 2*len(f.Origins))}
	for _, m := range f.Origins {
		a.Nodes = append(a.Nodes, uint64(m.Node), uint64(m.Bits))
	}
	return a
}

// matches decodes and checks the list.
func (a *AcceptOrigins) matches() ([]OriginMatch, error) {
	if len(a.Nodes)%2 != 0 || len(a.Nodes) > 2*maxAcceptOrigins {
		return nil, fmt.Errorf("replication: accepted origins: %d numbers, want at most %d (id, bits) pairs", len(a.Nodes), maxAcceptOrigins)
	}
	out := make([]OriginMatch, 0, len(a.Nodes)/2)
	for i := 0; i < len(a.Nodes); i += 2 {
		if a.Nodes[i] == 0 || a.Nodes[i+1] < 1 || a.Nodes[i+1] > 64 {
			return nil, fmt.Errorf("replication: accepted origin %x/%d: want a node id and 1-64 bits", a.Nodes[i], a.Nodes[i+1])
		}
		out = append(out, OriginMatch{Node: hlc.NodeID(a.Nodes[i]), Bits: int(a.Nodes[i+1])})
	}
	return out, nil
}

// filterChunk drops from a received chunk what the session's filter
// refuses: writes of origins it does not accept or that Check refuses,
// and empty ranges and skips of origins it does not accept. It returns
// the writes kept and counts the refused ones.
func (s *Session) filterChunk(c *Chunk, writes []*crdt.Write) []*crdt.Write {
	f := s.wf
	if f == nil {
		return writes
	}
	kept := writes[:0:0]
	for _, w := range writes {
		reason := ""
		if !f.Accepts(w.Origin) {
			reason = fmt.Sprintf("origin %s is not accepted from device peer %s", w.Origin, s.peer.Node)
		} else if f.Check != nil {
			reason = f.Check(w)
		}
		if reason == "" {
			kept = append(kept, w)
			continue
		}
		s.Stats.Refused++
		if f.OnRefused != nil {
			f.OnRefused(w, reason)
		}
	}
	empties := c.Empties[:0:0]
	for _, e := range c.Empties {
		if f.Accepts(hlc.NodeID(e.Origin)) {
			empties = append(empties, e)
		}
	}
	c.Empties = empties
	skips := c.Skips[:0:0]
	for _, k := range c.Skips {
		if f.Accepts(hlc.NodeID(k.Origin)) {
			skips = append(skips, k)
		}
	}
	c.Skips = skips
	return kept
}

// peerAccepts reports whether the peer takes writes of origin from this
// node (its Have.Accept).
func (s *Session) peerAccepts(origin hlc.NodeID) bool {
	if s.peerAccept == nil {
		return true
	}
	for _, m := range s.peerAccept {
		if m.Matches(origin) {
			return true
		}
	}
	return false
}
