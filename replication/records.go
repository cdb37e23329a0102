package replication

import (
	"errors"
	"fmt"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

func (s *Session) serveRecords(req *RecordReq) ([]Msg, error) {
	if len(req.Scan) > 0 {
		return s.serveListing(req)
	}
	if len(req.Keys) > 10000 {
		return nil, fmt.Errorf("%w: record request for %d records", ErrProtocol, len(req.Keys))
	}
	if len(req.Keys)+len(req.Held) > 10000 {
		return nil, fmt.Errorf("%w: record request for %d records", ErrProtocol, len(req.Keys)+len(req.Held))
	}
	resp := &Records{}
	nkeys := len(req.Keys)
	for i, k := range append(append([]RecordKey(nil), req.Keys...), req.Held...) {
		held := i >= nkeys // the asker holds it: send it whatever its filter says
		rs := RecordState{Table: k.Table, ID: k.ID}
		rec, err := s.l.Store.GetAny(k.Table, k.ID)
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) || err == nil && !s.peer.Scope.lists([]byte(k.Table)):
			// Of a table the asker may not read, not even whether the
			// record exists.
			rs.Missing = true
		case err != nil:
			return nil, err
		case !s.peer.Scope.Selects(k.Table, k.ID, rec, s.peerEval()) && (!held || !s.peer.Scope.lists([]byte(k.Table)) || IsSystemTable(k.Table)):
			// A record the asker holds is sent whatever its filter says,
			// but never one of a table it may not read, nor a system
			// record its limit leaves out (another device's sync errors).
			rs.OutOfScope = true
			for _, d := range rec.Applied {
				rs.Applied = append(rs.Applied, uint64(d.Node), d.Seq)
			}
		case !s.canRelay(k.Table, 0, true):
			rs.Missing = true // held here without some fields the asker holds
		default:
			b, err := s.peer.Scope.ProjectRecord(k.Table, rec).MarshalBinary()
			if err != nil {
				return nil, err
			}
			rs.State = b
		}
		resp.Recs = append(resp.Recs, rs)
	}
	return []Msg{{Records: resp}}, nil
}

func (s *Session) receiveRecords(r *Records) ([]Msg, error) {
	// Answers come in the order of the requests.
	asked := s.asked[0]
	s.asked = s.asked[1:]
	if asked.scan != nil {
		return s.receiveListing(asked.scan, r)
	}
	byKey := map[RecordKey][]*crdt.Write{}
	for _, k := range asked.keys {
		byKey[k] = nil
	}
	for _, k := range asked.held {
		byKey[k] = nil
	}
	skipsOf := map[RecordKey][]Skip{}
	for _, k := range asked.skips {
		rk := RecordKey{Table: k.Table, ID: k.ID}
		skipsOf[rk] = append(skipsOf[rk], k)
	}
	for _, w := range asked.writes {
		k := RecordKey{Table: w.Table, ID: w.ID}
		byKey[k] = append(byKey[k], w)
	}
	var retry []*crdt.Write
	purge := map[RecordKey]crdt.VV{}
	hide := map[RecordKey]crdt.VV{}
	empties := map[hlc.NodeID][]store.SeqRange{}
	for _, rs := range r.Recs {
		k := RecordKey{Table: rs.Table, ID: rs.ID}
		ws, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("%w: record %s/%s not asked for", ErrProtocol, rs.Table, rs.ID)
		}
		delete(byKey, k)
		switch {
		case rs.Missing || !rs.OutOfScope && s.l.AdmitRecord != nil && !s.l.AdmitRecord(s.peer, rs.Table, rs.ID):
			// The peer does not hold it whole (or this node does not take
			// it from the peer): the writes stay unheld, for another
			// partner to bring.
			s.l.Log.Debug("peer lacks a record this replica needs whole", "peer", s.peer.Node, "table", rs.Table, "id", rs.ID)
		case rs.OutOfScope:
			// Outside this replica's scope by the peer's state: hold the
			// writes without applying them and hide the record; purge it
			// if the peer holds the whole table (its word is final).
			var skipped crdt.VV
			for _, w := range ws {
				empties[w.Origin] = append(empties[w.Origin], store.SeqRange{Lo: w.Seq, Hi: w.Seq})
				skipped.Set(w.Dot())
			}
			if s.peer.Scope.Covers(s.l.scope()) && s.coveredBy(k, rs.Applied) {
				// Dropping the state: whatever it held must be in the
				// state that shows the record again, as skipped writes are.
				if rec, err := s.l.Store.GetAny(k.Table, k.ID); err == nil {
					skipped.Join(rec.Applied)
				}
				purge[k] = skipped
			} else {
				hide[k] = skipped
			}
		default:
			if !store.ValidTable(rs.Table) || !store.ValidID(rs.ID) {
				return nil, fmt.Errorf("%w: record with invalid name %q/%q", ErrProtocol, rs.Table, rs.ID)
			}
			var rec crdt.Record
			if err := rec.UnmarshalBinary(rs.State); err != nil {
				return nil, fmt.Errorf("%w: record %s/%s: %v", ErrProtocol, rs.Table, rs.ID, err)
			}
			merged, err := s.l.mergeRecord(rs.Table, rs.ID, &rec, s.peer.Scope.Covers(s.l.scope()))
			if err != nil && !errors.Is(err, hlc.ErrClockOffset) {
				return nil, err
			}
			if merged {
				s.Stats.RecordsFetched++
			}
			if err == nil {
				retry = append(retry, ws...)
				// The skipped writes are in the merged state now.
				for _, sk := range skipsOf[k] {
					if rec.Applied.Covers(crdt.Dot{Node: hlc.NodeID(sk.Origin), Seq: sk.Seq}) {
						o := hlc.NodeID(sk.Origin)
						empties[o] = append(empties[o], store.SeqRange{Lo: sk.Seq, Hi: sk.Seq})
					}
				}
			}
		}
	}
	if len(byKey) > 0 {
		return nil, fmt.Errorf("%w: records answer lacks %d asked records", ErrProtocol, len(byKey))
	}
	if len(retry) > 0 || len(empties) > 0 || len(hide) > 0 || len(purge) > 0 {
		res, _, err := s.l.applyRemote(s.peer, retry, empties, hide, purge)
		if err != nil {
			return nil, err
		}
		s.count(retry, res)
		if n := len(res.Deferred); n > 0 {
			s.l.Log.Debug("writes still missing their predecessor after a record fetch", "peer", s.peer.Node, "count", n)
		}
	}
	s.checkFinished()
	return nil, nil
}
