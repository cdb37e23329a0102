package policy

import (
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

const hub hlc.NodeID = 1

type rig struct {
	rec crdt.Record
	seq map[hlc.NodeID]uint64
	ts  hlc.Timestamp
}

func newRig() *rig { return &rig{seq: map[hlc.NodeID]uint64{}, ts: hlc.New(1000, 0)} }

// write makes a write by node with the given context (nil: the record's
// current context) and applies it, returning the write and the outcome.
func (r *rig) write(node hlc.NodeID, ctx crdt.VV, del bool, kv ...any) (*crdt.Write, *crdt.Outcome) {
	r.seq[node]++
	r.ts++
	if ctx == nil {
		ctx = r.rec.Context()
	}
	w := &crdt.Write{Table: "t", ID: "r", Origin: node, Seq: r.seq[node], TS: r.ts, Ctx: ctx, Delete: del}
	for i := 0; i < len(kv); i += 2 {
		w.Fields = append(w.Fields, crdt.FieldValue{Name: kv[i].(string), Value: crdt.MustValue(kv[i+1])})
	}
	out := &crdt.Outcome{}
	r.rec.Apply(w, out)
	return w, out
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Kind{"": LWW, "lww": LWW, "client-wins": ClientWins, "server-wins": ServerWins, "manual": Manual} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Parse("server_wins"); err == nil {
		t.Error("Parse accepted a misspelled policy")
	}
}

func TestArbitrate(t *testing.T) {
	t.Run("server-wins accepts a writer that saw everything", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1)
		w, out := r.write(2, nil, false, "a", 2)
		if d := Arbitrate(ServerWins, w, out, hub); d.Rejected || !d.Empty() {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("server-wins rejects a change the hub had moved on from", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1, "b", 1)
		seen := r.rec.Context()
		r.write(hub, nil, false, "b", 2) // the device has not seen this
		w, out := r.write(2, seen, false, "a", 9, "c", 9)
		d := Arbitrate(ServerWins, w, out, hub)
		if !d.Rejected || len(d.Fields) != 2 {
			t.Fatalf("got %+v", d)
		}
		if d.Fields[0].Name != "a" || d.Fields[0].Value.String() != "1" {
			t.Errorf("a restored to %v, want 1", d.Fields[0])
		}
		if d.Fields[1].Name != "c" || !d.Fields[1].Value.IsCleared() {
			t.Errorf("c (created by the rejected write) restored to %v, want cleared", d.Fields[1])
		}
		if len(d.Losses) != 2 {
			t.Errorf("losses %+v", d.Losses)
		}
	})
	t.Run("server-wins undoing a delete re-creates", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1)
		seen := r.rec.Context()
		r.write(hub, nil, false, "b", 2)
		w, out := r.write(2, seen, true)
		d := Arbitrate(ServerWins, w, out, hub)
		if !d.Rejected || !d.Write || len(d.Fields) != 2 {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("client-wins re-asserts the value that arrived last", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1)
		seen := r.rec.Context()
		r.write(hub, nil, false, "a", 2)
		w, out := r.write(2, seen, false, "a", 3)
		d := Arbitrate(ClientWins, w, out, hub)
		if len(d.Fields) != 1 || d.Fields[0].Value.String() != "3" || len(d.Losses) != 1 {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("client-wins asserts a delete that arrived last", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1)
		seen := r.rec.Context()
		r.write(hub, nil, false, "a", 2)
		w, out := r.write(2, seen, true)
		if d := Arbitrate(ClientWins, w, out, hub); !d.Redelete {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("lww reports the loser of concurrent writes", func(t *testing.T) {
		r := newRig()
		r.write(hub, nil, false, "a", 1)
		seen := r.rec.Context()
		r.write(hub, nil, false, "a", 2)
		w, out := r.write(2, seen, false, "a", 3) // stamped later: it wins
		d := Arbitrate(LWW, w, out, hub)
		if !d.Empty() || len(d.Losses) != 1 || d.Losses[0].Losing.Value.String() != "2" {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("no decision for duplicates, the arbiter's own writes, manual", func(t *testing.T) {
		r := newRig()
		w, out := r.write(hub, nil, false, "a", 1)
		if d := Arbitrate(ServerWins, w, out, hub); !d.Empty() || len(d.Losses) > 0 {
			t.Fatalf("own write: %+v", d)
		}
		dup := &crdt.Outcome{}
		r.rec.Apply(w, dup)
		if d := Arbitrate(ClientWins, w, dup, 9); !d.Empty() {
			t.Fatalf("duplicate: %+v", d)
		}
		seen := r.rec.Context()
		r.write(hub, nil, false, "a", 2)
		w2, out2 := r.write(2, seen, false, "a", 3)
		if d := Arbitrate(Manual, w2, out2, hub); !d.Empty() || len(d.Losses) > 0 {
			t.Fatalf("manual: %+v", d)
		}
		if c := Conflicts(Manual, &r.rec); len(c) != 1 || c[0].Field != "a" || len(c[0].Candidates) != 2 {
			t.Fatalf("manual conflicts %+v", c)
		}
		if c := Conflicts(LWW, &r.rec); c != nil {
			t.Fatalf("lww shows conflicts %+v", c)
		}
	})
}

func TestPending(t *testing.T) {
	r := newRig()
	r.write(hub, nil, false, "a", 1)
	r.write(2, nil, false, "a", 2)
	held := map[crdt.Dot]bool{}
	has := func(d crdt.Dot) bool { return held[d] }
	if !Pending(ServerWins, &r.rec, hub, has) {
		t.Fatal("a device's write the hub has not seen is not pending")
	}
	held[crdt.Dot{Node: 2, Seq: 1}] = true
	if Pending(ServerWins, &r.rec, hub, has) {
		t.Fatal("pending after the hub holds it")
	}
	if Pending(LWW, &r.rec, hub, func(crdt.Dot) bool { return false }) {
		t.Fatal("lww tables are never pending")
	}
}

// TestArrivalsLateDecision: client-wins, two devices' writes to one field
// reach the hub in the order a, b; the hub carries out a's decision after
// b arrived. a's decision must leave the field to b's (b reached the hub
// last), and b's decision logs only a's value, not again the value a had
// already beaten.
func TestArrivalsLateDecision(t *testing.T) {
	r := newRig()
	r.write(hub, nil, false, "f", "0")
	start := r.rec.Context()
	base, _ := r.write(hub, nil, false, "f", "office")
	wa, outA := r.write(2, start, false, "f", "a")
	var arr Arrivals
	da := Arbitrate(ClientWins, wa, outA, hub)
	arr.Dedupe(ClientWins, wa, &da)
	arr.Judged(ClientWins, wa, 1, da)
	if len(da.Fields) != 1 || len(da.Losses) != 1 || da.Losses[0].Losing.Dot() != base.Dot() {
		t.Fatalf("a's decision = %+v; want f re-written, the office's value lost", da)
	}
	wb, outB := r.write(3, start, false, "f", "b")
	db := Arbitrate(ClientWins, wb, outB, hub)
	arr.Dedupe(ClientWins, wb, &db)
	arr.Judged(ClientWins, wb, 2, db)
	if len(db.Losses) != 1 || db.Losses[0].Losing.Dot() != wa.Dot() {
		t.Fatalf("b's losses = %+v; want only a's value (the office's was logged by a's decision)", db.Losses)
	}
	// a's decision, carried out now, is overtaken on f.
	if nd := Still(da, wa.Dot(), &r.rec, arr.Overtaken("t", "r", 1)); !nd.Empty() {
		t.Fatalf("a's late decision still writes %+v; want nothing (b re-decides f)", nd)
	}
	arr.Done(1)
	if nd := Still(db, wb.Dot(), &r.rec, arr.Overtaken("t", "r", 2)); len(nd.Fields) != 1 || nd.Fields[0].Value.String() != `"b"` {
		t.Fatalf("b's decision = %+v; want f = b", nd)
	}
	arr.Done(2)
	if len(arr.m) != 0 || len(arr.byN) != 0 {
		t.Fatalf("Arrivals keeps %v / %v after every decision is done", arr.m, arr.byN)
	}
}

// TestLWWLogsOnce: a device offline makes two changes to a field the hub
// changed meanwhile; its stamps are later. The hub's value is logged as
// lost once, when the first change arrives; the second only replaces the
// device's own first change.
func TestLWWLogsOnce(t *testing.T) {
	r := newRig()
	r.write(hub, nil, false, "f", "0")
	start := r.rec.Context()
	h, _ := r.write(hub, nil, false, "f", "hub")
	w1, out1 := r.write(2, start, false, "f", "d1")
	ctx2 := start.Clone()
	ctx2.Set(w1.Dot())
	w2, out2 := r.write(2, ctx2, false, "f", "d2")
	l1 := Arbitrate(LWW, w1, out1, hub).Losses
	l2 := Arbitrate(LWW, w2, out2, hub).Losses
	if len(l1) != 1 || l1[0].Losing.Dot() != h.Dot() || l1[0].Winning.Dot() != w1.Dot() {
		t.Fatalf("first change's losses = %+v; want the hub's value, beaten by it", l1)
	}
	if len(l2) != 0 {
		t.Fatalf("second change's losses = %+v; want none (the hub's value was logged)", l2)
	}
}
