package store

import (
	"fmt"

	"github.com/replicad/replicad/hlc"
)

// What a node remembers of each peer it synced with (its peer table: the
// hub's view of its fleet), beside the per-table peer state (p keys):
//
//	i<peer:8> → opaque: the layer above's record of the peer
//
// DeletePeer removes both.

const pPeerInfo = 'i'

func peerInfoKey(peer hlc.NodeID) []byte { return u64Key(nil, pPeerInfo, uint64(peer)) }

// PutPeerInfo records in this batch what the layer above keeps of peer.
func (b *Batch) PutPeerInfo(peer hlc.NodeID, v []byte) {
	if b.err == nil && peer == 0 {
		b.err = fmt.Errorf("%w: peer info for node 0", ErrInvalid)
	}
	b.set(peerInfoKey(peer), v)
}

// DeletePeer removes in this batch everything kept of peer: its info and
// its per-table states.
func (b *Batch) DeletePeer(peer hlc.NodeID) {
	b.del(peerInfoKey(peer))
	if b.err == nil {
		lo := u64Key(nil, pPeer, uint64(peer))
		b.err = b.b.DeleteRange(lo, prefixEnd(lo), nil)
	}
}

// PeerInfos returns every peer's info (PutPeerInfo); the values are the
// caller's.
func (s *Store) PeerInfos() (map[hlc.NodeID][]byte, error) {
	out := map[hlc.NodeID][]byte{}
	err := s.scanPrefix([]byte{pPeerInfo}, func(k, v []byte) error {
		if len(k) != 9 {
			return corruptf(k, "peer info key of %d bytes", len(k))
		}
		out[hlc.NodeID(be(k[1:]))] = append([]byte(nil), v...)
		return nil
	})
	return out, err
}
