package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// Parked serves GET /v1/parked and POST /v1/parked/{origin}/{seq}/release.
type Parked struct {
	Core Core
	// MaxPerOrigin is the bound of parked writes per origin (shown).
	MaxPerOrigin int
	// Notify tells the change feed of a released write.
	Notify func()
	Log    hclog.Logger
}

// List pages the parked writes in (origin, seq) order: ?limit=
// (default 100, at most 1000) and ?after=ORIGIN:SEQ (the "next" of the
// previous page). "total" and "by_origin" are kept counts.
func (ps Parked) List(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := IntParam(r, "limit", DefaultPageLimit, MaxPageLimit)
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
			return nil, Errorf(http.StatusBadRequest, "after=%q: want ORIGIN:SEQ, the next of an earlier page", s)
		}
		afterOrigin, afterSeq = n, seq
	}
	return ps.Core.With(func(n *node.Node) (any, error) {
		page, more, err := n.Store().ListParkedPage(afterOrigin, afterSeq, limit)
		if err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for _, p := range page {
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
			last := page[len(page)-1].Write
			next = fmt.Sprintf("%s:%d", last.Origin, last.Seq)
		}
		total, by := n.Store().ParkedCount()
		byOrigin := map[string]int{}
		for o, n := range by {
			byOrigin[o.String()] = n
		}
		return map[string]any{"parked": out, "next": next, "total": total, "by_origin": byOrigin,
			"max_per_origin": ps.MaxPerOrigin}, nil
	})
}

// Release accepts the values of one parked write without adopting
// its clock: they are written as a new write of this node stamped now
// (which relays them to every replica as any local write), then the
// parked write itself is applied as its elided skeleton, restamped now
// too, so that its origin's sequence number is held (the origin stops
// offering it, its later writes apply) while its far-ahead stamp enters
// neither this node's clock nor its store. The log line names both
// stamps. A parked write whose origin's previous write to the record is
// missing stays parked (409): sync first.
func (ps Parked) Release(w http.ResponseWriter, r *http.Request) (any, error) {
	origin, err := hlc.ParseNodeID(r.PathValue("origin"))
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "%v", err)
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return nil, Errorf(http.StatusBadRequest, "sequence %q: want a positive integer", r.PathValue("seq"))
	}
	return ps.Core.With(func(n *node.Node) (any, error) {
		p, err := n.Store().GetParked(origin, seq)
		if err != nil {
			return nil, err // ErrNotFound: 404
		}
		pw := p.Write
		rec, err := n.Store().GetAny(pw.Table, pw.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = &crdt.Record{}
		case err != nil:
			return nil, err
		}
		if !rec.Ready(pw) {
			return nil, Errorf(http.StatusConflict, "parked write %s:%d: its origin's previous write to %s/%s has not arrived yet; sync, then release it", origin, seq, pw.Table, pw.ID)
		}
		// The values first: a crash before the skeleton leaves the write
		// parked, and releasing it again writes the same values again.
		var fields []crdt.FieldValue
		if !pw.Delete {
			fields = pw.Fields
		}
		res, err := n.Write(pw.Table, pw.ID, fields, pw.Delete, nil)
		if err != nil {
			return nil, err
		}
		sk := pw.Elide()
		sk.TS = n.Clock().Now()
		ar, err := n.Store().ApplyRemote(n.Clock(), []*crdt.Write{sk}, nil)
		if err != nil {
			return nil, err
		}
		ps.Notify()
		ps.Log.Info("parked write released: its values applied as a new write stamped now, not at its own stamp",
			"origin", origin, "seq", seq, "table", pw.Table, "id", pw.ID, "parked_hlc", pw.TS.String(), "hlc", res.Write.TS.String(), "held", ar.Status[0].String())
		return map[string]any{"released": true, "status": ar.Status[0].String(), "parked_hlc": pw.TS.String(),
			"hlc": res.Write.TS.String(), "node": n.ID().String(), "seq": res.Write.Seq}, nil
	})
}
