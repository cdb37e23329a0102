package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/store"
)

// Parked writes: remote writes stamped further ahead of this node's clock
// than --max-clock-offset. They are not applied (and not held, so senders
// offer them again: they apply by themselves once the clock catches up);
// an operator can list them and release one, accepting its values (never
// its clock).

// listParked pages the parked writes in (origin, seq) order: ?limit=
// (default 100, at most 1000) and ?after=ORIGIN:SEQ (the "next" of the
// previous page). "total" and "by_origin" are kept counts.
func (a *Agent) listParked(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := httpapi.IntParam(r, "limit", defaultPageLimit, maxPageLimit)
	if err != nil {
		return nil, err
	}
	var afterOrigin hlc.NodeID
	var afterSeq uint64
	if s := r.URL.Query().Get("after"); s != "" {
		o, q, ok := strings.Cut(s, ":")
		n, err1 := hlc.ParseNodeID(o)
		seq, err2 := strconv.ParseUint(q, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, httpapi.Errorf(http.StatusBadRequest, "after=%q: want ORIGIN:SEQ, the next of an earlier page", s)
		}
		afterOrigin, afterSeq = n, seq
	}
	return a.with(func(rp *replica) (any, error) {
		ps, more, err := rp.store.ListParkedPage(afterOrigin, afterSeq, limit)
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
		next := ""
		if more {
			last := ps[len(ps)-1].Write
			next = fmt.Sprintf("%s:%d", last.Origin, last.Seq)
		}
		total, by := rp.store.ParkedCount()
		byOrigin := map[string]int{}
		for o, n := range by {
			byOrigin[o.String()] = n
		}
		return map[string]any{"parked": out, "next": next, "total": total, "by_origin": byOrigin,
			"max_per_origin": a.cfg.Security.Guard.WithDefaults().MaxParked}, nil
	})
}

// parkRefused reports the remote writes refused because their origin has
// as many parked writes as --max-parked: a WARN line (throttled) and, once
// per origin until its parked writes drop below the bound again, a sync
// error. They are not lost: their origin keeps them and offers them again.
func (r *replica) parkRefused(writes []*crdt.Write, res *store.Result) {
	if len(res.ParkRefused) == 0 {
		return
	}
	r.a.metrics.ParkRefused(len(res.ParkRefused))
	max := r.a.cfg.Security.Guard.WithDefaults().MaxParked
	for _, i := range res.ParkRefused {
		w := writes[i]
		if ok, n := r.a.parkLog.Allow(); ok {
			r.a.log.Warn("remote write not parked: its origin has the most parked writes allowed; it stays with its origin, offered again at each session",
				"origin", w.Origin, "seq", w.Seq, "hlc", w.TS.String(), "max_parked", max, "suppressed", n)
		}
		r.a.parkMu.Lock()
		first := !r.a.parkFull[w.Origin]
		r.a.parkFull[w.Origin] = true
		r.a.parkMu.Unlock()
		if first {
			r.store.AppendSyncError(&store.SyncError{Time: time.Now().UnixMilli(), Table: w.Table, Record: w.ID, Policy: "clock",
				Nodes: []uint64{uint64(w.Origin)}, Detail: fmt.Sprintf("node %s has %d parked writes (stamped beyond --max-clock-offset), the most --max-parked allows: its further far-ahead writes, from %d (stamped %s) on, are refused until parked ones are released or apply; they stay with it and are offered again", w.Origin, max, w.Seq, w.TS)})
		}
	}
	_, by := r.store.ParkedCount()
	r.a.parkMu.Lock()
	for o := range r.a.parkFull {
		if by[o] < max {
			delete(r.a.parkFull, o)
		}
	}
	r.a.parkMu.Unlock()
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
		return nil, httpapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return nil, httpapi.Errorf(http.StatusBadRequest, "sequence %q: want a positive integer", r.PathValue("seq"))
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
			return nil, httpapi.Errorf(http.StatusConflict, "parked write %s:%d: its origin's previous write to %s/%s has not arrived yet; sync, then release it", origin, seq, pw.Table, pw.ID)
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
		a.feed.Notify()
		a.log.Info("parked write released: its values applied as a new write stamped now, not at its own stamp",
			"origin", origin, "seq", seq, "table", pw.Table, "id", pw.ID, "parked_hlc", pw.TS.String(), "hlc", res.Write.TS.String(), "held", ar.Status[0].String())
		return map[string]any{"released": true, "status": ar.Status[0].String(), "parked_hlc": pw.TS.String(),
			"hlc": res.Write.TS.String(), "node": rp.node.String(), "seq": res.Write.Seq}, nil
	})
}
