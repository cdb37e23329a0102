package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/replicaslot"
	"github.com/replicad/replicad/replica"
)

// apiDo sends method path with a JSON body and fails on a status other
// than 200.
func apiDo(t *testing.T, a *Agent, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.APIAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
}

func nextEvent(t *testing.T, ch <-chan replica.Event) replica.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return replica.Event{}
}

// The agent runs on a *replica.Replica: slot{a}.With (httpapi.Current) hands it the current
// one, whose reads see the API's writes and whose live queries are fed
// by the API's writes and by the writes a session applies; while the
// store is being recovered it fails as the other routes do
// (503).
func TestWithReplica(t *testing.T) {
	ctx := context.Background()
	hub, _ := runAgent(t, testConfig(t, "hub"))
	dcfg := testConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, _ := runAgent(t, dcfg)

	apiDo(t, hub, "PUT", "/v1/tables/jobs/records/a", `{"fields":{"status":"open"}}`)
	var ch <-chan replica.Event
	err := withReplica(hub, func(r *replica.Replica) error {
		rec, err := r.Get(ctx, "jobs", "a")
		if err != nil || rec.Fields["status"] != "open" {
			t.Fatalf("the API's write through the replica: %+v %v", rec, err)
		}
		ch, err = r.Watch(ctx, replica.Query{Table: "jobs", Where: `status == "open"`})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ch); ev.Type != "result" || len(ev.Records) != 1 {
		t.Fatalf("first event: %+v", ev)
	}
	apiDo(t, hub, "PUT", "/v1/tables/jobs/records/b", `{"fields":{"status":"open"}}`) // a local write
	if ev := nextEvent(t, ch); ev.Type != "add" || ev.Record.ID != "b" {
		t.Fatalf("after the API's write: %+v", ev)
	}
	apiDo(t, dev, "PUT", "/v1/tables/jobs/records/c", `{"fields":{"status":"open"}}`)
	apiDo(t, dev, "POST", "/v1/sync", `{}`) // a remote apply on the hub
	if ev := nextEvent(t, ch); ev.Type != "add" || ev.Record.ID != "c" {
		t.Fatalf("after a session brought a write: %+v", ev)
	}

	// While the store is recovered, no replica: the routes' error.
	hub.cur.Lock()
	saved, recovering := hub.cur.Get(), hub.cur.Recovering()
	hub.cur.Set(nil, true)
	hub.cur.Unlock()
	called := false
	err = withReplica(hub, func(*replica.Replica) error { called = true; return nil })
	hub.cur.Lock()
	hub.cur.Set(saved, recovering)
	hub.cur.Unlock()
	if called || !errors.Is(err, replicaslot.ErrRecovering) {
		t.Fatalf("while recovering: called %v, %v; want %v", called, err, replicaslot.ErrRecovering)
	}
}

// withReplica runs fn with a's current replica held, as the route hosts
// reach it (httpapi.Current).
func withReplica(a *Agent, fn func(*replica.Replica) error) error {
	_, err := slot{a}.With(func(r httpapi.Held) (any, error) { return nil, fn(r.Replica) })
	return err
}
