package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/live"
	"github.com/replicad/replicad/query/source"
)

// Query is a query over one table (the language of package query), or
// a declared view (View).
type Query struct {
	// View names a view the hubs declared (Replica.Views): it gives the
	// table, where and order, and Table, Where and Order stay empty;
	// Limit, Cursor, Fields, Count and Explain apply as to any query.
	View  string
	Table string
	// Where selects records: a CEL expression over the record's fields
	// by name, id, now, today, days() and hours(); "" selects every
	// record.
	Where string
	// Order lists fields, each with a leading "-" for descending; ties,
	// and a query without order, go by id.
	Order []string
	// Limit bounds a page (0: 100; at most 10,000).
	Limit int
	// Cursor continues from the page whose Result.Next it is.
	Cursor string
	// Fields projects the records to these fields (none: every field).
	Fields []string
	// Count answers only how many records match (Result.Count).
	Count bool
	// Explain adds the plan to the answer (Result.Plan).
	Explain bool
	// Device holds the device.* attributes a where clause may read
	// (nil: the replica's own, DeviceAttrs).
	Device map[string]string
}

// Result is a query's answer.
type Result struct {
	// Records are the page, in the query's order, with their Conflicts
	// and Pending as Get shows them (of the projected fields only, with
	// Query.Fields).
	Records []Record
	// Next is the cursor of the next page ("" when there are no more).
	Next string
	// Count is how many records match (Query.Count).
	Count int
	// Plan is how the query ran (Query.Explain).
	Plan *Plan
}

// Plan is the plan a query ran with.
type Plan struct {
	Index    string // the index used, "" for a scan
	Examined int    // records examined
}

func (q Query) inner() query.Query {
	return query.Query{Table: q.Table, Where: q.Where, Order: q.Order, Limit: q.Limit, Cursor: q.Cursor,
		Fields: q.Fields, Count: q.Count, Explain: q.Explain}
}

// Query runs q on a snapshot of the replica. A bad query is an ErrInvalid
// error naming the parameter and position at fault.
func (r *Replica) Query(ctx context.Context, q Query) (*Result, error) {
	done, err := r.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if q, err = r.resolve(q); err != nil {
		return nil, err
	}
	p, err := r.prepare(q)
	if err != nil {
		return nil, err
	}
	src, err := source.Open(r.st)
	if err != nil {
		return nil, storeErr(err)
	}
	defer src.Close()
	res, err := p.Run(src, query.Env{NowMs: time.Now().UnixMilli(), Device: q.Device})
	if err != nil {
		return nil, queryErr(err)
	}
	out := &Result{Records: make([]Record, 0, len(res.Records)), Next: res.Next, Count: res.Count}
	for _, rec := range res.Records {
		out.Records = append(out.Records, r.record(q.Table, rec, q.Fields))
	}
	if res.Plan != nil {
		out.Plan = &Plan{Examined: res.Plan.Examined}
		if res.Plan.Index != nil {
			out.Plan.Index = *res.Plan.Index
		}
	}
	return out, nil
}

func (r *Replica) prepare(q Query) (*query.Prepared, error) {
	if q.Table == "" {
		return nil, fmt.Errorf("%w: query: no table", ErrInvalid)
	}
	if err := checkNames(q.Table, "x", false); err != nil {
		return nil, err
	}
	p, err := query.Prepare(q.inner())
	if err != nil {
		return nil, queryErr(err)
	}
	return p, nil
}

func queryErr(err error) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		return fmt.Errorf("%w: query: %v", ErrInvalid, err)
	}
	return storeErr(err)
}

func (r *Replica) record(table string, rec query.Record, fields []string) Record {
	out := Record{Table: table, ID: rec.ID, Fields: make(map[string]any, len(rec.Fields))}
	for name, v := range rec.Fields {
		out.Fields[name], _ = v.Decode()
	}
	state := rec.State
	if state == nil { // a live event's record: its state now
		if st, err := r.st.Get(table, rec.ID); err == nil {
			state = st
		}
	}
	if state != nil {
		var keep map[string]bool
		if len(fields) > 0 {
			keep = make(map[string]bool, len(fields))
			for _, f := range fields {
				keep[f] = true
			}
		}
		r.addConflicts(&out, state, keep)
	}
	return out
}

// Event is one event of a Watch.
type Event struct {
	// Type is "result" (the first event: the query's current result in
	// Records), "reset" (the whole result again, replacing the one
	// held), "add" (Record entered the result), "change" (Record, in
	// the result, changed; resuming, Record is in the result), "remove"
	// (the record Record.ID left the result, if it is there) or
	// "overflow" (the last event: the watcher fell behind, resume from
	// ID with WatchFrom).
	Type string
	// ID resumes after this event (WatchFrom). Events delivered
	// together carry it on the last one only, the others have "": keep
	// the last non-empty ID seen.
	ID      string
	Record  *Record
	Records []Record
}

// Watch keeps q live: the channel receives the query's result, then an
// event for every record that enters, changes in or leaves it, whoever
// made the change (a Put here, a sync, a delete, a scope change). The
// channel is closed when ctx is done, when the replica is closed, or
// after an "overflow" event when the watcher fell too far behind
// (Config.WatchQueue events; read it promptly). Limit, Order and Cursor
// select the watched window as for Query; Count and Explain are refused.
func (r *Replica) Watch(ctx context.Context, q Query) (<-chan Event, error) {
	return r.WatchFrom(ctx, q, "")
}

// WatchFrom is Watch resuming after the event whose ID is lastEventID
// (the last non-empty ID received, an "overflow" event's included; ""
// is Watch). Instead of the result, the channel first receives, for
// every record of the table written or whose scope changed since that
// event, a "change" if it is in the result now or a "remove" if not:
// applied to the result held at lastEventID (change as an upsert,
// remove as a delete if present) they give the current result. When
// that cannot be told exactly (an ID from before the replica was
// reopened, a full window, a where clause reading the time, too many
// writes since), the first event is a "reset" carrying the whole
// result. Then events follow as for Watch.
func (r *Replica) WatchFrom(ctx context.Context, q Query, lastEventID string) (<-chan Event, error) {
	done, err := r.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if q.Count || q.Explain {
		return nil, fmt.Errorf("%w: watch: Count and Explain are for Query", ErrInvalid)
	}
	if q, err = r.resolve(q); err != nil {
		return nil, err
	}
	if _, err := r.prepare(q); err != nil {
		return nil, err
	}
	sub, err := r.live.Subscribe(q.inner(), q.Device, lastEventID)
	if err != nil {
		return nil, queryErr(err)
	}
	ch := make(chan Event)
	wctx, cancel := context.WithCancel(ctx)
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); sub.Close() }) }
	r.wg.Add(2)
	go func() { // ends the subscription with ctx or the replica
		defer r.wg.Done()
		select {
		case <-wctx.Done():
		case <-r.ctx.Done():
		}
		stop()
	}()
	go func() {
		defer r.wg.Done()
		defer close(ch)
		defer stop()
		for {
			ev, err := sub.Next(wctx)
			if err != nil {
				return
			}
			out := Event{Type: ev.Type, ID: ev.ID}
			if ev.Record != nil {
				rec := r.record(q.Table, *ev.Record, q.Fields)
				out.Record = &rec
			}
			for _, rec := range ev.Records {
				out.Records = append(out.Records, r.record(q.Table, rec, q.Fields))
			}
			select {
			case ch <- out:
			case <-wctx.Done():
				return
			case <-r.ctx.Done():
				return
			}
			if ev.Type == live.Overflow {
				return
			}
		}
	}()
	return ch, nil
}

// SyncReport is what one sync round did.
type SyncReport struct {
	Partners  int      // partners synced with
	Succeeded int      // sessions that completed
	Failed    []string // "addr: reason" per failed session
	Sent      uint64   // writes sent
	Applied   uint64   // writes received and applied here
}

// Sync runs one sync round with every partner (the hubs, and with gossip
// every alive member) and returns when it is over: an error naming each
// partner that failed, nil when every session completed (or there is no
// partner).
func (r *Replica) Sync(ctx context.Context) error {
	rep, err := r.SyncRound(ctx)
	if err != nil {
		return err
	}
	if len(rep.Failed) > 0 {
		errs := make([]error, len(rep.Failed))
		for i, f := range rep.Failed {
			errs[i] = errors.New(f)
		}
		return fmt.Errorf("replica: sync: %d of %d partners failed: %w", len(rep.Failed), rep.Partners, errors.Join(errs...))
	}
	return nil
}

// SyncRound is Sync returning what the round did; its error is only
// the replica's (closed, ctx done), a partner's failure is in
// SyncReport.Failed.
func (r *Replica) SyncRound(ctx context.Context) (*SyncReport, error) {
	done, err := r.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel) // Close cuts the round short
	defer stop()
	sum := r.engine.SyncNow(ctx, nil)
	if r.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &SyncReport{Partners: sum.Partners, Succeeded: sum.Succeeded, Failed: sum.Failed,
		Sent: sum.Stats.WritesSent, Applied: sum.Stats.WritesApplied}, nil
}
