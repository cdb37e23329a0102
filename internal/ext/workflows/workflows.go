package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// workflowMinBackoff is the first delay between a change's attempts.
const workflowMinBackoff = 250 * time.Millisecond

// Host is what the workflows need of the node they run on.
type Host = extapi.Node

// Feed wakes the workflows at each change (node.Feed).
type Feed interface {
	Wait() <-chan struct{}
	Closed() bool
}

// Decisions tells whether the arbiter still has to carry out a decision
// about a write (a change is delivered once it is decided).
type Decisions interface {
	Pending(origin hlc.NodeID, seq uint64) bool
}

// Set is the workflows of a hub.
type Set struct {
	h     Host
	flows []*Workflow
}

// Workflow is one configured workflow.
type Workflow struct {
	h   Host
	ws  *deps
	cfg config.WorkflowConfig
	hc  *http.Client

	mu       sync.Mutex
	st       workflowState
	current  uint64 // the change being delivered (0: none)
	tries    int    // attempts at the current change
	nextTry  time.Time
	curError string
}

// workflowState is a workflow's persisted state.
type workflowState struct {
	Cursor          uint64 `json:"cursor"`
	Delivered       uint64 `json:"delivered"`
	Failed          uint64 `json:"failed"`
	Skipped         uint64 `json:"skipped"`
	Attempts        uint64 `json:"attempts"`
	LastError       string `json:"last_error,omitempty"`
	LastErrorAt     int64  `json:"last_error_at,omitempty"`
	LastDeliveredAt int64  `json:"last_delivered_at,omitempty"`
}

// Outcome is the recorded outcome of one change.
type Outcome struct {
	Table    string `json:"table"`
	ID       string `json:"id"`
	Origin   string `json:"origin,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Status   string `json:"status"` // delivered, failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	Time     int64  `json:"time"`
}

// keepOutcomes is how many outcomes per workflow are kept.
const keepOutcomes = 1000

// deps are what every workflow of a set shares.
type deps struct {
	feed Feed
	dec  Decisions // nil: nothing to wait for
}

// New loads the workflows cfgs on hub h: each resumes at its stored
// cursor; a new one starts with the changes accepted from now. dec (nil:
// none) is asked whether a change is decided before it is delivered.
func New(h Host, feed Feed, dec Decisions, cfgs []config.WorkflowConfig) (*Set, error) {
	ws := &Set{h: h}
	d := &deps{feed: feed, dec: dec}
	for _, c := range cfgs {
		w := &Workflow{h: h, ws: d, cfg: c, hc: &http.Client{Timeout: c.Timeout}}
		data, ok, err := h.Store().Consumer(c.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := json.Unmarshal(data, &w.st); err != nil {
				return nil, fmt.Errorf("workflow %s: stored state: %w", c.Name, err)
			}
		} else {
			// A new workflow starts with the changes accepted from now.
			w.st.Cursor = h.Store().FeedHead()
			if err := w.persist(nil); err != nil {
				return nil, err
			}
		}
		ws.flows = append(ws.flows, w)
	}
	return ws, nil
}

func (w *Workflow) persist(extra func(b *store.Batch)) error {
	w.mu.Lock()
	data, err := json.Marshal(w.st)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.h.Store().Update(func(b *store.Batch) error {
		b.PutConsumer(w.cfg.Name, data)
		if extra != nil {
			extra(b)
		}
		return b.Err()
	})
}

// wants reports whether the workflow delivers changes of table.
func (w *Workflow) wants(table string) bool {
	switch w.cfg.Table {
	case "", "*":
		return !strings.HasPrefix(table, "_replicad_")
	}
	return table == w.cfg.Table
}

// run delivers the feed's changes until ctx is done.
func (w *Workflow) run(ctx context.Context) {
	st := w.h.Store()
	for ctx.Err() == nil {
		wake := w.ws.feed.Wait()
		w.mu.Lock()
		cursor := w.st.Cursor
		w.mu.Unlock()
		es, err := st.Feed(cursor, 100)
		if err != nil {
			if ctx.Err() == nil {
				w.h.Log().Error("workflow: reading the change feed", "workflow", w.cfg.Name, "error", err)
			}
			sleep(ctx, time.Second)
			continue
		}
		if len(es) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				if w.ws.feed.Closed() {
					sleep(ctx, 100*time.Millisecond)
				}
			case <-time.After(5 * time.Second):
			}
			continue
		}
		skipped := false
		for _, e := range es {
			if !w.wants(e.Table) {
				w.mu.Lock()
				w.st.Cursor = e.Feed
				w.st.Skipped++
				w.mu.Unlock()
				skipped = true
				continue
			}
			if !w.handle(ctx, e) {
				return
			}
			skipped = false
		}
		if skipped {
			// Not urgent (a restart would skip them again), but it keeps
			// the restart's work short.
			if err := w.persist(nil); err != nil && ctx.Err() == nil {
				w.h.Log().Error("workflow: saving the cursor", "workflow", w.cfg.Name, "error", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// decided waits until the arbiter has carried out its decision about the
// write origin/seq, if one is queued; false if ctx ended first.
func (w *Workflow) decided(ctx context.Context, e store.FeedEntry) bool {
	if w.ws.dec == nil || e.Origin == 0 {
		return true
	}
	for w.ws.dec.Pending(e.Origin, e.Seq) {
		if !sleep(ctx, 100*time.Millisecond) {
			return false
		}
	}
	return true
}

// handle delivers one change until it is confirmed (or given up); false
// if ctx ended first (nothing recorded: it is delivered again later).
func (w *Workflow) handle(ctx context.Context, e store.FeedEntry) bool {
	if !w.decided(ctx, e) {
		return false
	}
	w.mu.Lock()
	w.current, w.tries, w.curError = e.Feed, 0, ""
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.current, w.tries, w.curError, w.nextTry = 0, 0, "", time.Time{}
		w.mu.Unlock()
	}()
	backoff := workflowMinBackoff
	for {
		payload, err := w.payload(e)
		if err == nil {
			err = w.deliver(ctx, payload)
		}
		if ctx.Err() != nil {
			return false
		}
		now := time.Now()
		w.mu.Lock()
		w.tries++
		w.st.Attempts++
		tries := w.tries
		w.mu.Unlock()
		out := Outcome{Table: e.Table, ID: e.ID, Seq: e.Seq, Attempts: tries, Time: now.UnixMilli()}
		if e.Origin != 0 {
			out.Origin = e.Origin.String()
		}
		if err == nil {
			out.Status = "delivered"
			w.mu.Lock()
			w.st.Cursor = e.Feed
			w.st.Delivered++
			w.st.LastDeliveredAt = now.UnixMilli()
			w.mu.Unlock()
			w.record(e.Feed, out)
			return true
		}
		msg := err.Error()
		w.h.Log().Warn("workflow delivery failed", "workflow", w.cfg.Name, "cursor", e.Feed, "table", e.Table, "id", e.ID,
			"attempt", tries, "error", msg)
		w.mu.Lock()
		w.st.LastError, w.st.LastErrorAt, w.curError = msg, now.UnixMilli(), msg
		w.mu.Unlock()
		if w.cfg.MaxAttempts > 0 && tries >= w.cfg.MaxAttempts {
			out.Status, out.Error = "failed", msg
			w.mu.Lock()
			w.st.Cursor = e.Feed
			w.st.Failed++
			w.mu.Unlock()
			w.record(e.Feed, out)
			return true
		}
		if err := w.persist(nil); err != nil && ctx.Err() == nil {
			w.h.Log().Error("workflow: saving its state", "workflow", w.cfg.Name, "error", err)
		}
		w.mu.Lock()
		w.nextTry = now.Add(backoff)
		w.mu.Unlock()
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// record saves a change's outcome with the advanced cursor, in one batch.
func (w *Workflow) record(n uint64, out Outcome) {
	data, _ := json.Marshal(out)
	err := w.persist(func(b *store.Batch) {
		b.PutConsumerOutcome(w.cfg.Name, n, data)
		if n > keepOutcomes && n%100 == 0 {
			b.PruneConsumerOutcomes(w.cfg.Name, n-keepOutcomes)
		}
	})
	if err != nil {
		// The change is delivered again after a restart: at least once.
		w.h.Log().Error("workflow: recording an outcome", "workflow", w.cfg.Name, "cursor", n, "error", err)
	}
}

// deliver runs one attempt.
func (w *Workflow) deliver(ctx context.Context, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	if w.cfg.Webhook != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.Webhook, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "replicad-workflow")
		req.Header.Set("X-Replicad-Workflow", w.cfg.Name)
		resp, err := w.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}
	cmd := exec.CommandContext(ctx, w.cfg.Command[0], w.cfg.Command[1:]...)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Env = append(os.Environ(), "REPLICAD_WORKFLOW="+w.cfg.Name)
	cmd.WaitDelay = time.Second
	var outb tail
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		if s := strings.TrimSpace(outb.String()); s != "" {
			return fmt.Errorf("%v: %s", err, s)
		}
		return err
	}
	return nil
}

// tail keeps the last 512 bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 512 {
		t.b = append(t.b[:0], t.b[len(t.b)-512:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// Payload is the JSON a workflow receives for a feed entry.
type Payload struct {
	Workflow string `json:"workflow"`
	// Delivery identifies the change on this hub, stable across retries
	// and restarts: "<hub node>-<cursor>".
	Delivery string `json:"delivery"`
	Cursor   string `json:"cursor"`
	Table    string `json:"table"`
	ID       string `json:"id"`
	Origin   string `json:"origin,omitempty"` // "" for a whole-record merge
	Seq      uint64 `json:"seq,omitempty"`
	HLC      string `json:"hlc,omitempty"`
	Delete   bool   `json:"delete"`
	// Fields is what the change set (null when the hub's log no longer
	// holds its values: superseded everywhere, or a merge).
	Fields map[string]json.RawMessage `json:"fields"`
	// Record is the record's state when delivered (null if it is gone).
	Record *PayloadRecord `json:"record"`
}

// PayloadRecord is a record's state in a Payload.
type PayloadRecord struct {
	Fields  map[string]json.RawMessage `json:"fields"`
	Deleted bool                       `json:"deleted"`
}

var errStopStream = errors.New("stop")

// payload is the change e as delivered.
func (w *Workflow) payload(e store.FeedEntry) ([]byte, error) {
	r := w.h
	p := Payload{Workflow: w.cfg.Name, Delivery: r.ID().String() + "-" + strconv.FormatUint(e.Feed, 10),
		Cursor: strconv.FormatUint(e.Feed, 10), Table: e.Table, ID: e.ID, Seq: e.Seq}
	if e.Origin != 0 {
		p.Origin = e.Origin.String()
		err := r.Store().Stream(e.Origin, e.Seq-1, func(wr *crdt.Write) error {
			if wr.Seq != e.Seq {
				return errStopStream
			}
			p.HLC = wr.TS.String()
			p.Delete = wr.Delete
			if !wr.Elided {
				p.Fields = map[string]json.RawMessage{}
				for _, f := range wr.Fields {
					p.Fields[f.Name] = node.JSONValue(f.Value)
				}
			}
			return errStopStream
		})
		if err != nil && !errors.Is(err, errStopStream) {
			return nil, err
		}
	}
	rec, err := r.Store().GetAny(e.Table, e.ID)
	switch {
	case err == nil:
		p.Record = &PayloadRecord{Fields: map[string]json.RawMessage{}, Deleted: !rec.Exists()}
		rec.Visible(func(n string, v crdt.Value) { p.Record.Fields[n] = node.JSONValue(v) })
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return json.Marshal(p)
}

// --- the API's view ---

// Status is a workflow's state as the API shows it.
type Status = api.Workflow

// msStr is a Unix time in ms as RFC 3339 (UTC), "" for 0.
func msStr(ms int64) string {
	if ms == 0 {
		return ""
	}
	return timeStr(time.UnixMilli(ms))
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// View returns the workflow's state.
func (w *Workflow) View() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := Status{Name: w.cfg.Name, Table: w.cfg.Table, Webhook: w.cfg.Webhook, Command: w.cfg.Command,
		Cursor: strconv.FormatUint(w.st.Cursor, 10), FeedHead: strconv.FormatUint(w.h.Store().FeedHead(), 10), State: "idle",
		Delivered: w.st.Delivered, Failed: w.st.Failed, Attempts: w.st.Attempts,
		LastError: w.st.LastError, LastErrorAt: msStr(w.st.LastErrorAt), LastDeliveredAt: msStr(w.st.LastDeliveredAt)}
	if v.Table == "" {
		v.Table = "*"
	}
	if w.current != 0 {
		v.State = "delivering"
		v.Current = strconv.FormatUint(w.current, 10)
		v.CurrentAttempts = w.tries
		if w.tries > 0 {
			v.State = "retrying"
			v.CurrentError = w.curError
			v.NextTry = timeStr(w.nextTry)
		}
	}
	return v
}

// Find returns the workflow name, nil if there is none (ws nil: none).
func (ws *Set) Find(name string) *Workflow {
	if ws == nil {
		return nil
	}
	for _, w := range ws.flows {
		if w.cfg.Name == name {
			return w
		}
	}
	return nil
}

// All returns the workflows in configuration order (ws nil: none).
func (ws *Set) All() []*Workflow {
	if ws == nil {
		return nil
	}
	return ws.flows
}

// Views returns the workflows' states in configuration order (ws nil:
// none).
func (ws *Set) Views() []api.Workflow {
	var out []api.Workflow
	for _, w := range ws.All() {
		out = append(out, w.View())
	}
	return out
}

// Start runs every workflow in its own goroutine, on wg, until ctx is
// done.
func (ws *Set) Start(ctx context.Context, wg *sync.WaitGroup) {
	for _, w := range ws.flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
}

// Name returns the workflow's name.
func (w *Workflow) Name() string { return w.cfg.Name }

// Delivery is a recorded outcome as the API shows it.
type Delivery struct {
	Cursor string `json:"cursor"`
	Outcome
	TimeStr string `json:"at"`
}

// Deliveries returns the workflow's recorded outcomes before the cursor
// before (0: the newest), newest first, at most limit.
func (w *Workflow) Deliveries(before uint64, limit int) ([]Delivery, error) {
	os, err := w.h.Store().ConsumerOutcomes(w.cfg.Name, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(os))
	for _, o := range os {
		d := Delivery{Cursor: strconv.FormatUint(o.Feed, 10)}
		if err := json.Unmarshal(o.Value, &d.Outcome); err != nil {
			continue
		}
		d.TimeStr = msStr(d.Time)
		out = append(out, d)
	}
	return out, nil
}
