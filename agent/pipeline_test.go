package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// TestOneWritePipeline: every path that makes a local write (an API
// write, an arbiter's decision, a permission write-back, a published
// duplicate flag) goes through the node's one write pipeline, so each
// records the conflict bases of a manual table and keeps the duplicate
// index the same way, and each runs the registered hooks and the
// epilogue.
func TestOneWritePipeline(t *testing.T) {
	cfg := olConfig(t, "hub")
	cfg.Tables = map[string]TableConfig{"jobs": {Keys: []string{"code"}}}
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeAll()
	r := a.cur.Get()
	if r.arb == nil || r.enf == nil || r.dupes == nil {
		t.Fatalf("a hub with keys: arbiter %v, enforcer %v, dedupe %v", r.arb != nil, r.enf != nil, r.dupes != nil)
	}
	// Both tables manual (the duplicates' table through a policy record:
	// the config refuses system tables).
	if err := r.n.PublishPolicies(map[string]string{"jobs": "manual", dedupe.Table: "manual"}); err != nil {
		t.Fatal(err)
	}
	probe := map[string]int{}
	r.n.OnLocalWrite("probe", func(_ *store.Batch, res *store.WriteResult) error {
		probe[res.Write.Table+"/"+res.Write.ID]++
		return nil
	})
	written := map[string]int{}
	r.n.OnWritten("probe", func(w *crdt.Write) { written[w.Table+"/"+w.ID]++ })

	str := func(s string) crdt.Value { return crdt.MustValue(s) }
	remote := hlc.NodeID(0xabc)
	rclk := hlc.NewClock(hlc.SystemClock, time.Minute)
	seq := uint64(0)
	applyRemote := func(id string, fields ...crdt.FieldValue) crdt.Dot {
		t.Helper()
		seq++
		w := &crdt.Write{Table: "jobs", ID: id, Origin: remote, Seq: seq, TS: rclk.Now(), Fields: fields}
		if _, err := r.store.ApplyRemote(r.clock, []*crdt.Write{w}, nil); err != nil {
			t.Fatal(err)
		}
		return w.Dot()
	}

	// 1. A local write (the API's path).
	if _, err := r.localWrite("jobs", "local", []crdt.FieldValue{{Name: "code", Value: str("L")}, {Name: "v", Value: str("x")}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.localWrite("jobs", "local", []crdt.FieldValue{{Name: "v", Value: str("y")}}, false); err != nil {
		t.Fatal(err)
	}

	// 2. An arbiter's decision over a remote write.
	judged := applyRemote("decided", crdt.FieldValue{Name: "code", Value: str("D1")}, crdt.FieldValue{Name: "v", Value: str("p")})
	dec, _ := json.Marshal(arbiter.Decision{Table: "jobs", ID: "decided", Origin: uint64(judged.Node), Seq: judged.Seq, Policy: "server-wins",
		Fields: []crdt.FieldValue{{Name: "code", Value: str("D2")}, {Name: "v", Value: str("q")}}})
	if err := r.store.Update(func(b *store.Batch) error { b.EnqueueIn(arbiter.Queue, dec); return b.Err() }); err != nil {
		t.Fatal(err)
	}
	if err := r.arb.Drain(); err != nil {
		t.Fatal(err)
	}

	// 3. A permission write-back over a rejected remote write.
	rejected := applyRemote("back", crdt.FieldValue{Name: "code", Value: str("B")}, crdt.FieldValue{Name: "v", Value: str("new")})
	qc := &authz.Compensation{Table: "jobs", ID: "back", Origin: uint64(rejected.Node), Seq: rejected.Seq,
		Fields: []crdt.FieldValue{{Name: "v", Value: str("old")}}, Reason: "test",
		Error: &store.SyncError{Time: time.Now().UnixMilli(), Table: "jobs", Record: "back", Policy: "permission", Kind: node.KindRejected}}
	if err := r.enf.CarryOut(0, qc); err != nil {
		t.Fatal(err)
	}

	// 4. A duplicate flag published over an earlier version of its record.
	flag := dedupe.FlagID("jobs", "dup")
	if _, err := r.localWrite(dedupe.Table, flag, []crdt.FieldValue{{Name: "status", Value: str("before")}}, false); err != nil {
		t.Fatal(err)
	}
	pf, _ := json.Marshal(dedupe.PendingFlag{With: []string{"local"}, Keys: map[string]json.RawMessage{}, Detected: 1})
	if err := r.store.Update(func(b *store.Batch) error { b.PutDupPending("jobs", "dup", pf); return b.Err() }); err != nil {
		t.Fatal(err)
	}
	if err := r.dupes.Publish(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path, table, id, field, base string
		code                         string // the key value filed ("": not a keyed table)
	}{
		{"local write", "jobs", "local", "v", "x", "L"},
		{"arbiter decision", "jobs", "decided", "v", "p", "D2"},
		{"permission write-back", "jobs", "back", "v", "new", "B"},
		{"duplicate flag", dedupe.Table, flag, "status", "before", ""},
	} {
		e, ok, err := r.store.Base(c.table, c.id, c.field)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if ok {
			got = fmt.Sprint(mustDecode(t, e.Value))
		}
		if got != c.base {
			t.Errorf("%s: conflict base of %s/%s.%s = %q (recorded %v), want %q", c.path, c.table, c.id, c.field, got, ok, c.base)
		}
		key := c.table + "/" + c.id
		if probe[key] == 0 || written[key] == 0 {
			t.Errorf("%s: the pipeline's hooks ran %d times, its epilogue %d times, want both", c.path, probe[key], written[key])
		}
		if c.code == "" {
			continue
		}
		dg, filed, err := r.store.KeyIndexOf(c.table, c.id)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.store.Get(c.table, c.id)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := dedupe.KeyDigest([]string{"code"}, rec)
		if v, _ := rec.Get("code"); fmt.Sprint(mustDecode(t, v)) != c.code {
			t.Errorf("%s: code = %v, want %s", c.path, mustDecode(t, v), c.code)
		}
		if !filed || !bytes.Equal(dg, want) {
			t.Errorf("%s: the duplicate index files %s/%s under %x (%v), want %x", c.path, c.table, c.id, dg, filed, want)
		}
	}
}

func mustDecode(t *testing.T, v crdt.Value) any {
	t.Helper()
	x, err := v.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return x
}
