package replication

import (
	"errors"
	"fmt"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// ErrResyncRequired: a replica's data is older than the tombstone horizon
// (it was away while deleted records were collected); it must be reset and
// resynced from scratch, or it could bring deleted data back.
var ErrResyncRequired = errors.New("resync required: this replica was away while deleted records were collected; reset it (replicad reset) to resync from scratch")

// checkHorizon refuses a peer whose holdings are below this replica's
// tombstone horizon (a replica that holds some of an origin's writes, but
// not all those the horizon covers), and adopts the peer's horizon when it
// is higher and this replica is not itself below it, collecting what it
// newly covers.
func (s *Session) checkHorizon(theirs map[hlc.NodeID]store.Held, flat []uint64) error {
	mine, err := s.l.Store.GCHorizon()
	if err != nil {
		return err
	}
	if below(theirs, mine, s.peer.Node) {
		s.l.Log.Warn("peer refused: its data is older than the tombstone horizon", "peer", s.peer.Node)
		return &RefusedError{Reason: "peer " + s.peer.Node.String() + ": " + ErrResyncRequired.Error()}
	}
	peerH, err := flatToVV(flat)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if len(peerH) == 0 || peerH.LessEq(mine) {
		return nil
	}
	if s.wf != nil || !s.horizonSource() {
		// Only hubs bring the horizon, and only a hub whose role is
		// proven: a forged horizon would collect deleted records early
		// and refuse honest replicas as too old. Nor is this replica told
		// to resync on such a peer's word.
		if s.peer.Role == "hub" {
			s.l.Log.Debug("tombstone horizon of an unauthenticated hub ignored", "peer", s.peer.Node)
		}
		return nil
	}
	if below(s.l.Store.Holdings(), peerH, s.l.Node) {
		return ErrResyncRequired // the peer refuses us too; say why here
	}
	if _, err := s.l.Store.RaiseGCHorizon(peerH); err != nil {
		return err
	}
	for {
		n, err := s.l.Store.Collect(1000)
		if err != nil {
			return err
		}
		if n < 1000 {
			return nil
		}
	}
}

// below reports whether holdings hold some but not all of an origin's
// writes that horizon covers (a replica's own origin excepted).
func below(held map[hlc.NodeID]store.Held, horizon crdt.VV, self hlc.NodeID) bool {
	for _, d := range horizon {
		if d.Node == self {
			continue
		}
		if c := held[d.Node].Contig; c > 0 && c < d.Seq {
			return true
		}
	}
	return false
}
