package agent

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// Parked writes: remote writes stamped further ahead of this node's clock
// than --max-clock-offset. They are not applied (and not held, so senders
// offer them again: they apply by themselves once the clock catches up);
// an operator can list them and release one, accepting its values (never
// its clock).

func (a *Agent) listParked(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		ps, err := rp.store.ListParked()
		if err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for _, p := range ps {
			fields := map[string]any{}
			for _, f := range p.Write.Fields {
				if v, err := f.Value.Decode(); err == nil {
					fields[f.Name] = v
				}
			}
			out = append(out, map[string]any{
				"origin": p.Write.Origin.String(), "seq": p.Write.Seq, "table": p.Write.Table, "id": p.Write.ID,
				"hlc": p.Write.TS.String(), "delete": p.Write.Delete, "fields": fields,
				"reason": p.Reason, "parked_at_ms": p.Time, "ahead_ms": p.AheadMs,
			})
		}
		return map[string]any{"parked": out}, nil
	})
}

// releaseParked accepts the values of one parked write without adopting
// its clock: they are written as a new write of this node stamped now
// (which relays them to every replica as any local write), then the
// parked write itself is applied as its elided skeleton, restamped now
// too, so that its origin's sequence number is held (the origin stops
// offering it, its later writes apply) while its far-ahead stamp enters
// neither this node's clock nor its store. The log line names both
// stamps. A parked write whose origin's previous write to the record is
// missing stays parked (409): sync first.
func (a *Agent) releaseParked(w http.ResponseWriter, r *http.Request) (any, error) {
	origin, err := hlc.ParseNodeID(r.PathValue("origin"))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "%v", err)
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return nil, errf(http.StatusBadRequest, "sequence %q: want a positive integer", r.PathValue("seq"))
	}
	return a.with(func(rp *replica) (any, error) {
		p, err := rp.store.GetParked(origin, seq)
		if err != nil {
			return nil, err // ErrNotFound: 404
		}
		pw := p.Write
		rec, err := rp.store.GetAny(pw.Table, pw.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = &crdt.Record{}
		case err != nil:
			return nil, err
		}
		if !rec.Ready(pw) {
			return nil, errf(http.StatusConflict, "parked write %s:%d: its origin's previous write to %s/%s has not arrived yet; sync, then release it", origin, seq, pw.Table, pw.ID)
		}
		// The values first: a crash before the skeleton leaves the write
		// parked, and releasing it again writes the same values again.
		var fields []crdt.FieldValue
		if !pw.Delete {
			fields = pw.Fields
		}
		res, err := rp.localWrite(pw.Table, pw.ID, fields, pw.Delete)
		if err != nil {
			return nil, err
		}
		sk := pw.Elide()
		sk.TS = rp.clock.Now()
		ar, err := rp.store.ApplyRemote(rp.clock, []*crdt.Write{sk}, nil)
		if err != nil {
			return nil, err
		}
		a.feed.notify()
		a.log.Info("parked write released: its values applied as a new write stamped now, not at its own stamp",
			"origin", origin, "seq", seq, "table", pw.Table, "id", pw.ID, "parked_hlc", pw.TS.String(), "hlc", res.Write.TS.String(), "held", ar.Status[0].String())
		return map[string]any{"released": true, "status": ar.Status[0].String(), "parked_hlc": pw.TS.String(),
			"hlc": res.Write.TS.String(), "node": rp.node.String(), "seq": res.Write.Seq}, nil
	})
}
