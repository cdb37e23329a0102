package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/arbiter"
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/internal/ext/dedupe"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// engineProbe stands between the node and its replication engine: it
// records what the write pipeline tells the engine and passes it on.
type engineProbe struct {
	mu   sync.Mutex
	next node.Notifier
	got  []string // table/id of each write told
}

func (p *engineProbe) Notify(w *crdt.Write) {
	p.mu.Lock()
	p.got = append(p.got, w.Table+"/"+w.ID)
	p.mu.Unlock()
	p.next.Notify(w)
}

func (p *engineProbe) told() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// pipelineBase is a conflict base a path records: field of table/id
// held value before the path's write replaced it.
type pipelineBase struct{ table, id, field, value string }

// pipelineKey is how a path leaves the duplicate index: table/id filed
// under the digest of its key field "code", which holds code ("": not
// filed, the record was deleted).
type pipelineKey struct{ table, id, code string }

// TestOneWritePipeline: every path that makes a local write goes through
// the node's one write pipeline. Each path (an API write, an arbiter's
// decision, a permission write-back, a published duplicate flag, a
// duplicate's resolution, a draft's commit, a conflict's resolution, a
// sync error's retry, a parked write's release) is driven the way it
// runs in the agent: the user's paths through the agent's HTTP handler,
// the others through the extension that makes them. Each must record the conflict bases of a
// manual table, keep the duplicate index, run the registered in-batch
// hooks and epilogue observers, and tell, once per write, the change
// feed (its waiters wake, GET /v1/changes lists the write), the engine
// (the node's notifier, and the pending count of writes no hub holds)
// and the metrics (replicad_writes_applied_local_total on /metrics).
func TestOneWritePipeline(t *testing.T) {
	cfg := olConfig(t, "hub")
	cfg.Tables = map[string]TableConfig{"jobs": {Keys: []string{"code"}}}
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.closeAll()
	r := a.cur.Get()
	arb, enf, dupes := extOf[*arbiter.Arbiter](r), extOf[*authz.Ext](r).Enforcer, extOf[*dedupe.Ext](r).Detector
	if arb == nil || enf == nil || dupes == nil || r.engine == nil {
		t.Fatalf("a hub with keys: arbiter %v, enforcer %v, dedupe %v, engine %v", arb != nil, enf != nil, dupes != nil, r.engine != nil)
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
	eng := &engineProbe{next: r.engine}
	r.n.SetEngine(eng)

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
	call := func(method, path string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		if body == nil {
			b = nil
		}
		if rec := serve(a, method, path, string(b)); rec.Code != 200 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	put := func(id string, fields map[string]any) {
		t.Helper()
		call("PUT", "/v1/tables/jobs/records/"+id, map[string]any{"fields": fields})
	}
	localWrites := func() int {
		t.Helper()
		const name = "replicad_writes_applied_local_total "
		for _, l := range strings.Split(serve(a, "GET", "/metrics", "").Body.String(), "\n") {
			if v, ok := strings.CutPrefix(l, name); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("/metrics: %q", l)
				}
				return int(n)
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return 0
	}
	changesSince := func(cursor uint64) []api.Change {
		t.Helper()
		var out api.Changes
		rec := serve(a, "GET", fmt.Sprintf("/v1/changes?since=%d&timeout=0s", cursor), "")
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("GET /v1/changes: %d %s", rec.Code, rec.Body)
		}
		return out.Changes
	}
	// newest is the value of the newest candidate of table/id's field:
	// the one a write over the conflict records as its base.
	newest := func(id, field string) string {
		t.Helper()
		rec, err := r.store.Get("jobs", id)
		if err != nil {
			t.Fatal(err)
		}
		cs := rec.Candidates(field)
		if len(cs) < 2 {
			t.Fatalf("jobs/%s.%s: %d candidates, want a conflict", id, field, len(cs))
		}
		best := cs[0]
		for _, c := range cs[1:] {
			if best.Stamp().Less(c.Stamp()) {
				best = c
			}
		}
		return fmt.Sprint(mustDecode(t, best.Value))
	}

	var syncErr uint64 // the sync error the retry re-applies
	var conflictBase string
	var compensation *node.Compensation
	var parked crdt.Dot // the parked write released
	flag := dedupe.FlagID("jobs", "dup")
	paths := []struct {
		name   string
		setup  func() // what the path needs, before the counts are taken
		do     func() // the path
		writes int    // the local writes it makes
		bases  []pipelineBase
		keys   []pipelineKey
	}{{
		name: "API write (PUT)",
		do: func() {
			put("local", map[string]any{"code": "L", "v": "x"})
			put("local", map[string]any{"v": "y"})
		},
		writes: 2,
		bases:  []pipelineBase{{"jobs", "local", "v", "x"}},
		keys:   []pipelineKey{{"jobs", "local", "L"}},
	}, {
		name: "arbiter decision",
		setup: func() {
			judged := applyRemote("decided", crdt.FieldValue{Name: "code", Value: str("D1")}, crdt.FieldValue{Name: "v", Value: str("p")})
			dec, _ := json.Marshal(arbiter.Decision{Table: "jobs", ID: "decided", Origin: uint64(judged.Node), Seq: judged.Seq, Policy: "server-wins",
				Fields: []crdt.FieldValue{{Name: "code", Value: str("D2")}, {Name: "v", Value: str("q")}}})
			if err := r.store.Update(func(b *store.Batch) error { b.EnqueueIn(arbiter.Queue, dec); return b.Err() }); err != nil {
				t.Fatal(err)
			}
		},
		do: func() {
			if err := arb.Drain(); err != nil {
				t.Fatal(err)
			}
		},
		writes: 1,
		bases:  []pipelineBase{{"jobs", "decided", "v", "p"}},
		keys:   []pipelineKey{{"jobs", "decided", "D2"}},
	}, {
		name: "permission write-back",
		setup: func() {
			rejected := applyRemote("back", crdt.FieldValue{Name: "code", Value: str("B")}, crdt.FieldValue{Name: "v", Value: str("new")})
			qc := &node.Compensation{Table: "jobs", ID: "back", Origin: uint64(rejected.Node), Seq: rejected.Seq,
				Fields: []crdt.FieldValue{{Name: "v", Value: str("old")}}, Reason: "test",
				Error: &store.SyncError{Time: time.Now().UnixMilli(), Table: "jobs", Record: "back", Policy: "permission", Kind: node.KindRejected}}
			compensation = qc
		},
		do: func() {
			if err := enf.CarryOut(0, compensation); err != nil {
				t.Fatal(err)
			}
		},
		writes: 2, // the write-back and its sync error's record
		bases:  []pipelineBase{{"jobs", "back", "v", "new"}},
		keys:   []pipelineKey{{"jobs", "back", "B"}},
	}, {
		name: "duplicate flag published",
		setup: func() {
			// A flag published over an earlier version of its record.
			if _, err := r.localWrite(dedupe.Table, flag, []crdt.FieldValue{{Name: "status", Value: str("before")}}, false); err != nil {
				t.Fatal(err)
			}
			pf, _ := json.Marshal(dedupe.PendingFlag{With: []string{"local"}, Keys: map[string]json.RawMessage{}, Detected: 1})
			if err := r.store.Update(func(b *store.Batch) error { b.PutDupPending("jobs", "dup", pf); return b.Err() }); err != nil {
				t.Fatal(err)
			}
		},
		do: func() {
			if err := dupes.Publish(); err != nil {
				t.Fatal(err)
			}
		},
		writes: 1,
		bases:  []pipelineBase{{dedupe.Table, flag, "status", "before"}},
	}, {
		name: "duplicate resolved (POST /v1/duplicates, merge)",
		setup: func() {
			put("orig", map[string]any{"code": "K", "v": "o"})
			put("copy", map[string]any{"code": "K", "v": "c"}) // flagged as a duplicate of orig
			if err := dupes.Publish(); err != nil {
				t.Fatal(err)
			}
		},
		do: func() {
			call("POST", "/v1/duplicates/jobs/copy", api.DuplicateRequest{Action: "merge", With: "orig", Prefer: "new"})
		},
		writes: 3, // the survivor, the duplicate's delete, the flag
		bases:  []pipelineBase{{"jobs", "orig", "v", "o"}, {dedupe.Table, dedupe.FlagID("jobs", "copy"), "status", "open"}},
		keys:   []pipelineKey{{"jobs", "orig", "K"}, {"jobs", "copy", ""}},
	}, {
		name: "draft committed (POST /v1/drafts/.../commit)",
		setup: func() {
			put("drafted", map[string]any{"code": "R1", "v": "before"})
			call("PUT", "/v1/tables/jobs/records/drafted?draft=true", map[string]any{"fields": map[string]any{"code": "R2", "v": "draft"}})
		},
		do:     func() { call("POST", "/v1/drafts/jobs/drafted/commit", nil) },
		writes: 1,
		bases:  []pipelineBase{{"jobs", "drafted", "v", "before"}},
		keys:   []pipelineKey{{"jobs", "drafted", "R2"}},
	}, {
		name: "conflict resolved (POST /v1/conflicts)",
		setup: func() {
			put("conf", map[string]any{"code": "C1", "v": "mine"})
			applyRemote("conf", crdt.FieldValue{Name: "code", Value: str("C2")}) // concurrent: a conflict on code
			conflictBase = newest("conf", "code")
		},
		do:     func() { call("POST", "/v1/conflicts/jobs/conf/code", map[string]any{"value": "C3"}) },
		writes: 1,
		bases:  []pipelineBase{{"jobs", "conf", "code", ""}}, // conflictBase
		keys:   []pipelineKey{{"jobs", "conf", "C3"}},
	}, {
		name: "sync error retried (POST /v1/sync-errors/.../retry)",
		setup: func() {
			put("retried", map[string]any{"code": "S1", "v": "kept"})
			var err error
			syncErr, err = r.store.AppendSyncError(&store.SyncError{Time: time.Now().UnixMilli(), Table: "jobs", Record: "retried", Fields: []string{"code", "v"},
				Losing: map[string][]byte{"code": str("S2"), "v": str("lost")}, Policy: "server-wins", Kind: node.KindRejected})
			if err != nil {
				t.Fatal(err)
			}
		},
		do:     func() { call("POST", fmt.Sprintf("/v1/sync-errors/%d/retry", syncErr), nil) },
		writes: 1,
		bases:  []pipelineBase{{"jobs", "retried", "v", "kept"}},
		keys:   []pipelineKey{{"jobs", "retried", "S2"}},
	}, {
		name: "parked write released (POST /v1/parked/.../release)",
		setup: func() {
			put("parked", map[string]any{"code": "P1", "v": "here"})
			seq++
			ahead := &crdt.Write{Table: "jobs", ID: "parked", Origin: remote, Seq: seq, TS: hlc.New(time.Now().Add(time.Hour).UnixMilli(), 0),
				Fields: []crdt.FieldValue{{Name: "code", Value: str("P2")}, {Name: "v", Value: str("ahead")}}}
			res, err := r.store.ApplyRemote(r.clock, []*crdt.Write{ahead}, nil)
			if err != nil || len(res.Parked) != 1 {
				t.Fatalf("a write an hour ahead: parked %v (%v), want it parked", res, err)
			}
			parked = ahead.Dot()
		},
		do:     func() { call("POST", fmt.Sprintf("/v1/parked/%s/%d/release", parked.Node, parked.Seq), nil) },
		writes: 1, // its values, as this node's write (its skeleton is applied as the origin's)
		bases:  []pipelineBase{{"jobs", "parked", "v", "here"}},
		keys:   []pipelineKey{{"jobs", "parked", "P2"}},
	}}

	for _, p := range paths {
		if p.setup != nil {
			p.setup()
		}
		// The counts before the path.
		woken := a.feed.Wait()
		_, head, err := httpapi.CurrentFeed{Cur: slot{a}, Notify: a.feed}.Read(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		metric, pending, told := localWrites(), r.out.Pending(), len(eng.told())
		hooks, observed := sum(probe), sum(written)

		p.do()

		select {
		case <-woken:
		default:
			t.Errorf("%s: the change feed's waiters were not woken", p.name)
		}
		listed := map[string]bool{}
		changes := changesSince(head)
		own := 0
		for _, c := range changes {
			if c.Origin == r.node.String() {
				listed[c.Table+"/"+c.ID] = true
				own++
			}
		}
		if own != p.writes {
			t.Errorf("%s: GET /v1/changes lists %d writes of this node (%v), want %d", p.name, own, changes, p.writes)
		}
		if n := localWrites() - metric; n != p.writes {
			t.Errorf("%s: replicad_writes_applied_local_total rose by %d, want %d", p.name, n, p.writes)
		}
		if n := r.out.Pending() - pending; n != uint64(p.writes) {
			t.Errorf("%s: the writes pending for a hub rose by %d, want %d", p.name, n, p.writes)
		}
		toldNow := eng.told()[told:]
		if len(toldNow) != p.writes {
			t.Errorf("%s: the engine was told of %d writes (%v), want %d", p.name, len(toldNow), toldNow, p.writes)
		}
		if n, m := sum(probe)-hooks, sum(written)-observed; n != p.writes || m != p.writes {
			t.Errorf("%s: the pipeline's hooks ran %d times, its epilogue %d times, want %d each", p.name, n, m, p.writes)
		}

		for _, b := range p.bases {
			key := b.table + "/" + b.id
			if !listed[key] || !slicesContains(toldNow, key) {
				t.Errorf("%s: %s written, but the change feed lists it %v, the engine was told %v", p.name, key, listed[key], toldNow)
			}
			want := b.value
			if want == "" {
				want = conflictBase
			}
			e, ok, err := r.store.Base(b.table, b.id, b.field)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if ok {
				got = fmt.Sprint(mustDecode(t, e.Value))
			}
			if got != want {
				t.Errorf("%s: conflict base of %s.%s = %q (recorded %v), want %q", p.name, key, b.field, got, ok, want)
			}
		}
		for _, k := range p.keys {
			dg, filed, err := r.store.KeyIndexOf(k.table, k.id)
			if err != nil {
				t.Fatal(err)
			}
			if k.code == "" {
				if filed {
					t.Errorf("%s: the duplicate index still files the deleted %s/%s", p.name, k.table, k.id)
				}
				continue
			}
			rec, err := r.store.Get(k.table, k.id)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := rec.Get("code"); fmt.Sprint(mustDecode(t, v)) != k.code {
				t.Errorf("%s: %s/%s code = %v, want %s", p.name, k.table, k.id, mustDecode(t, v), k.code)
			}
			want, _ := dedupe.KeyDigest([]string{"code"}, rec)
			if !filed || !bytes.Equal(dg, want) {
				t.Errorf("%s: the duplicate index files %s/%s under %x (%v), want %x (code %s)", p.name, k.table, k.id, dg, filed, want, k.code)
			}
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func mustDecode(t *testing.T, v crdt.Value) any {
	t.Helper()
	x, err := v.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return x
}
