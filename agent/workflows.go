package agent

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

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/store"
)

// Workflows (issue 9, "work that only runs online"): a hub runs hooks on
// the changes it accepts, an HTTP webhook (the change POSTed as JSON) or
// a command (the change as JSON on stdin).
//
// Each workflow is a consumer of the hub's durable change feed (the
// store's feed, GET /v1/changes), which lists every write applied on the
// hub, local or from a device, in the order the hub applied it: the
// order the changes were accepted. Its cursor (the last feed position it
// finished) is kept in the store (store/consumer.go), written in the
// batch that records the change's outcome, so a restart, kill -9
// included, resumes after the last confirmed change; a change whose
// delivery was not confirmed is delivered again (at least once: a
// receiver deduplicates by the "delivery" id, which is stable across
// retries and restarts). A workflow delivers one change at a time and
// retries a failing one with exponential backoff (250ms doubling to
// max_backoff) until it is confirmed, holding back the later ones, or,
// with max_attempts, gives up on it (recorded as failed) and goes on.
// Workflows run in their own goroutines and only read the store: a
// failing hook never blocks or slows sync.
//
// "Accepted", for client-wins and server-wins tables, is after the
// arbiter's decision: a change is delivered once the arbiter has carried
// out its decision about it (its queued decision is gone), and the
// payload carries both the change as it was made ("fields": what it set)
// and the record's state at delivery ("record"), which includes the
// decision (a server-wins change that was undone shows the restored
// values; the arbiter's own writes are changes too and are delivered in
// their turn). A new workflow starts with the changes accepted after it
// was first configured.
// workflowMinBackoff is the first delay between a change's attempts.
const workflowMinBackoff = 250 * time.Millisecond

type workflows struct {
	r     *replica
	flows []*workflow
}

type workflow struct {
	r   *replica
	cfg WorkflowConfig
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

// deliveryOutcome is the recorded outcome of one change.
type deliveryOutcome struct {
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

// newWorkflows loads the workflows of r's configuration (on a hub).
func newWorkflows(r *replica) (*workflows, error) {
	ws := &workflows{r: r}
	if r.a.cfg.Role != "hub" {
		if len(r.a.cfg.Workflows) > 0 {
			r.a.log.Warn("workflows are run by a hub only; ignoring them", "workflows", len(r.a.cfg.Workflows))
		}
		return ws, nil
	}
	for _, c := range r.a.cfg.Workflows {
		w := &workflow{r: r, cfg: c, hc: &http.Client{Timeout: c.Timeout}}
		data, ok, err := r.store.Consumer(c.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := json.Unmarshal(data, &w.st); err != nil {
				return nil, fmt.Errorf("workflow %s: stored state: %w", c.Name, err)
			}
		} else {
			// A new workflow starts with the changes accepted from now.
			w.st.Cursor = r.store.FeedHead()
			if err := w.persist(nil); err != nil {
				return nil, err
			}
		}
		ws.flows = append(ws.flows, w)
	}
	return ws, nil
}

func (w *workflow) persist(extra func(b *store.Batch)) error {
	w.mu.Lock()
	data, err := json.Marshal(w.st)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.r.store.Update(func(b *store.Batch) error {
		b.PutConsumer(w.cfg.Name, data)
		if extra != nil {
			extra(b)
		}
		return b.Err()
	})
}

// wants reports whether the workflow delivers changes of table.
func (w *workflow) wants(table string) bool {
	switch w.cfg.Table {
	case "", "*":
		return !strings.HasPrefix(table, "_replicad_")
	}
	return table == w.cfg.Table
}

// run delivers the feed's changes until ctx is done.
func (w *workflow) run(ctx context.Context) {
	st := w.r.store
	for ctx.Err() == nil {
		wake := w.r.a.feed.wait()
		w.mu.Lock()
		cursor := w.st.Cursor
		w.mu.Unlock()
		es, err := st.Feed(cursor, 100)
		if err != nil {
			if ctx.Err() == nil {
				w.r.a.log.Error("workflow: reading the change feed", "workflow", w.cfg.Name, "error", err)
			}
			sleep(ctx, time.Second)
			continue
		}
		if len(es) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				if w.r.a.feed.isClosed() {
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
				w.r.a.log.Error("workflow: saving the cursor", "workflow", w.cfg.Name, "error", err)
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
func (w *workflow) decided(ctx context.Context, e store.FeedEntry) bool {
	if w.r.arb == nil || e.Origin == 0 {
		return true
	}
	for w.r.arb.Pending(e.Origin, e.Seq) {
		if !sleep(ctx, 100*time.Millisecond) {
			return false
		}
	}
	return true
}

// handle delivers one change until it is confirmed (or given up); false
// if ctx ended first (nothing recorded: it is delivered again later).
func (w *workflow) handle(ctx context.Context, e store.FeedEntry) bool {
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
		payload, err := w.r.changePayload(w.cfg.Name, e)
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
		out := deliveryOutcome{Table: e.Table, ID: e.ID, Seq: e.Seq, Attempts: tries, Time: now.UnixMilli()}
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
		w.r.a.log.Warn("workflow delivery failed", "workflow", w.cfg.Name, "cursor", e.Feed, "table", e.Table, "id", e.ID,
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
			w.r.a.log.Error("workflow: saving its state", "workflow", w.cfg.Name, "error", err)
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
func (w *workflow) record(n uint64, out deliveryOutcome) {
	data, _ := json.Marshal(out)
	err := w.persist(func(b *store.Batch) {
		b.PutConsumerOutcome(w.cfg.Name, n, data)
		if n > keepOutcomes && n%100 == 0 {
			b.PruneConsumerOutcomes(w.cfg.Name, n-keepOutcomes)
		}
	})
	if err != nil {
		// The change is delivered again after a restart: at least once.
		w.r.a.log.Error("workflow: recording an outcome", "workflow", w.cfg.Name, "cursor", n, "error", err)
	}
}

// deliver runs one attempt.
func (w *workflow) deliver(ctx context.Context, payload []byte) error {
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

// changePayload is the JSON a workflow receives for a feed entry.
type changePayload struct {
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
	Record *payloadRecord `json:"record"`
}

type payloadRecord struct {
	Fields  map[string]json.RawMessage `json:"fields"`
	Deleted bool                       `json:"deleted"`
}

var errStopStream = errors.New("stop")

func (r *replica) changePayload(name string, e store.FeedEntry) ([]byte, error) {
	p := changePayload{Workflow: name, Delivery: r.node.String() + "-" + strconv.FormatUint(e.Feed, 10),
		Cursor: strconv.FormatUint(e.Feed, 10), Table: e.Table, ID: e.ID, Seq: e.Seq}
	if e.Origin != 0 {
		p.Origin = e.Origin.String()
		err := r.store.Stream(e.Origin, e.Seq-1, func(wr *crdt.Write) error {
			if wr.Seq != e.Seq {
				return errStopStream
			}
			p.HLC = wr.TS.String()
			p.Delete = wr.Delete
			if !wr.Elided {
				p.Fields = map[string]json.RawMessage{}
				for _, f := range wr.Fields {
					p.Fields[f.Name] = jsonValue(f.Value)
				}
			}
			return errStopStream
		})
		if err != nil && !errors.Is(err, errStopStream) {
			return nil, err
		}
	}
	rec, err := r.store.GetAny(e.Table, e.ID)
	switch {
	case err == nil:
		p.Record = &payloadRecord{Fields: map[string]json.RawMessage{}, Deleted: !rec.Exists()}
		rec.Visible(func(n string, v crdt.Value) { p.Record.Fields[n] = jsonValue(v) })
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return json.Marshal(p)
}

// --- the API's view ---

type workflowJSON = api.Workflow

func msStr(ms int64) string {
	if ms == 0 {
		return ""
	}
	return timeStr(time.UnixMilli(ms))
}

func (w *workflow) view() workflowJSON {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := workflowJSON{Name: w.cfg.Name, Table: w.cfg.Table, Webhook: w.cfg.Webhook, Command: w.cfg.Command,
		Cursor: strconv.FormatUint(w.st.Cursor, 10), FeedHead: strconv.FormatUint(w.r.store.FeedHead(), 10), State: "idle",
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

func (ws *workflows) find(name string) *workflow {
	for _, w := range ws.flows {
		if w.cfg.Name == name {
			return w
		}
	}
	return nil
}

// start runs every workflow in its own goroutine, on r.wg.
func (ws *workflows) start(ctx context.Context) {
	for _, w := range ws.flows {
		ws.r.wg.Add(1)
		go func() {
			defer ws.r.wg.Done()
			w.run(ctx)
		}()
	}
}
