package agent

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// TestWriteBacksDoNotStarveDecisions: a data directory whose one work
// queue (older versions) holds more permission write-backs than a page,
// queued ahead of a policy decision, is moved to the named queues at
// start; the arbiter then carries out the decision although every
// write-back is still queued.
func TestWriteBacksDoNotStarveDecisions(t *testing.T) {
	cfg := olConfig(t, "hub")
	cfg.Policies = map[string]string{"jobs": "server-wins"}
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	r := a.cur.Get()
	remote := hlc.NodeID(0xabc)
	w := &crdt.Write{Table: "jobs", ID: "r", Origin: remote, Seq: 1, TS: hlc.NewClock(hlc.SystemClock, time.Minute).Now(),
		Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("p")}}}
	if _, err := r.store.ApplyRemote(r.clock, []*crdt.Write{w}, nil); err != nil {
		t.Fatal(err)
	}
	const writeBacks = 150
	if err := r.store.Update(func(b *store.Batch) error {
		for i := 0; i < writeBacks; i++ {
			qc, _ := json.Marshal(node.Compensation{Table: "jobs", ID: fmt.Sprint("c", i), Origin: uint64(remote), Seq: uint64(100 + i),
				Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("old")}}, Reason: "test",
				Error: &store.SyncError{Table: "jobs", Record: fmt.Sprint("c", i), Policy: "permission", Kind: node.KindRejected}})
			b.Enqueue(append([]byte(node.LegacyPrefix), qc...))
		}
		d, _ := json.Marshal(arbiter.Decision{Table: "jobs", ID: "r", Origin: uint64(remote), Seq: 1, Policy: "server-wins",
			Fields: []crdt.FieldValue{{Name: "v", Value: crdt.MustValue("q")}}})
		b.Enqueue(d)
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	a.closeAll()

	a, err = New(cfg, hclog.NewNullLogger()) // same data dir
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeAll()
	r = a.cur.Get()
	if err := extOf[*arbiter.Arbiter](r).Drain(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.store.Get("jobs", "r")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("v"); string(v) != string(crdt.MustValue("q")) {
		t.Fatalf("jobs/r.v = %v after the drain: the decision queued behind %d write-backs was not carried out", mustDecode(t, v), writeBacks)
	}
	if old, err := r.store.Queue(-1); err != nil || len(old) != 0 {
		t.Fatalf("the old queue still holds %d entries (%v)", len(old), err)
	}
	wb, err := r.store.QueueOf(node.WriteBackQueue, -1)
	if err != nil || len(wb) != writeBacks {
		t.Fatalf("write-back queue: %d entries (%v), want %d", len(wb), err, writeBacks)
	}
	var qc node.Compensation
	if err := json.Unmarshal(wb[0].Value, &qc); err != nil || qc.ID != "c0" {
		t.Fatalf("first write-back moved as %q (%v), want c0 first", qc.ID, err)
	}
	if ds, err := r.store.QueueOf(arbiter.Queue, -1); err != nil || len(ds) != 0 {
		t.Fatalf("decision queue after the drain: %d entries (%v)", len(ds), err)
	}
}
