package agent

import (
	"net/http"
	"strconv"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Parked writes: remote writes stamped further ahead of this node's clock
// than --max-clock-offset. They are not applied (and not held, so senders
// offer them again: they apply by themselves once the clock catches up);
// an operator can list them and release one, accepting its clock.

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

// releaseParked applies one parked write although its stamp is beyond the
// bound: the operator accepts that this node's clock moves forward to it.
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
		p, err := rp.store.ReleaseParked(origin, seq)
		if err != nil {
			return nil, err // ErrNotFound: 404
		}
		// Accept the stamp: raise this node's clock to it, then apply with
		// a clock that has no bound.
		rp.clock.Restore(p.Write.TS)
		unbounded := hlc.NewClock(rp.clock.Physical, 0)
		unbounded.Restore(rp.clock.HighWater())
		res, err := rp.store.ApplyRemote(unbounded, []*crdt.Write{p.Write}, nil)
		if err != nil {
			return nil, err
		}
		rp.clock.Restore(unbounded.HighWater())
		return map[string]any{"released": true, "status": res.Status[0].String()}, nil
	})
}
