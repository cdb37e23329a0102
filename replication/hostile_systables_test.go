package replication

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// A device cannot slip a system-table record past a hub's checks as a
// whole record: it sends a write whose predecessor the hub lacks (so the
// hub asks for the record whole) and answers with a forged state. With
// Local.AdmitRecord refusing system tables from non-hubs (as the agent's
// hub does), the state is not merged and the write stays unheld; the hub
// keeps serving.
func TestHostileSystemRecordAnswer(t *testing.T) {
	// Without the check the attack works: the forged state is merged.
	if got := forgeSystemRecord(t, false); got != `"lww"` {
		t.Fatalf("without AdmitRecord the forged record was not merged (policy %s): the attack is not exercised", got)
	}
	if got := forgeSystemRecord(t, true); got != `"server-wins"` {
		t.Fatalf("the hub merged a forged system record: policy %s", got)
	}
}

// forgeSystemRecord runs the attack on a fresh hub (with or without the
// check) and returns the hub's policy value afterwards.
func forgeSystemRecord(t *testing.T, check bool) string {
	var mu sync.Mutex
	var asked []string
	hub := startTCPNode(t, "hub", nil, func(c *Config) {
		if !check {
			return
		}
		c.Local.AdmitRecord = func(from Peer, table, id string) bool {
			mu.Lock()
			asked = append(asked, from.Role+" "+table+"/"+id)
			mu.Unlock()
			return !strings.HasPrefix(table, SystemPrefix) || from.Role == "hub"
		}
	})
	hub.put(t, SystemPrefix+"policy", "sw", "policy", "server-wins")
	const dev = hlc.NodeID(0x66)
	ts := hlc.Timestamp(uint64(time.Now().UnixMilli()) << 16)
	w1 := &crdt.Write{Origin: dev, Seq: 1, TS: ts, Table: SystemPrefix + "policy", ID: "sw",
		Fields: []crdt.FieldValue{{Name: "policy", Value: crdt.MustValue("lww")}}}
	w2 := &crdt.Write{Origin: dev, Seq: 2, TS: ts + 1, Table: SystemPrefix + "policy", ID: "sw",
		Ctx: crdt.VV{{Node: dev, Seq: 1}}, Fields: []crdt.FieldValue{{Name: "policy", Value: crdt.MustValue("lww")}}}
	forgedRec := &crdt.Record{}
	var out crdt.Outcome
	forgedRec.Apply(w1, &out)
	forgedRec.Apply(w2, &out)
	state, err := forgedRec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := hello(t, hub.addr, dev, "c")
	body, err := encodeChunkWrites([]*crdt.Write{w2}, p.node, p.hub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteMsg(p.c, Msg{Chunk: &Chunk{No: 1, Body: body}}); err != nil {
		t.Fatal(err)
	}
	p.c.SetDeadline(time.Now().Add(5 * time.Second))
	var req *RecordReq
	for req == nil {
		m, _, err := ReadMsg(p.c)
		if err != nil || m.Error != nil {
			t.Fatalf("waiting for the hub's record request: %v %v", m.Type(), err)
		}
		if m.Chunk != nil {
			WriteMsg(p.c, Msg{Ack: &Ack{No: m.Chunk.No}})
		}
		req = m.RecordReq
	}
	if len(req.Keys) != 1 || req.Keys[0].Table != SystemPrefix+"policy" {
		t.Fatalf("record request %+v", req)
	}
	if _, err := WriteMsg(p.c, Msg{Records: &Records{Recs: []RecordState{{Table: SystemPrefix + "policy", ID: "sw", State: state}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteMsg(p.c, Msg{Done: &Done{}}); err != nil {
		t.Fatal(err)
	}
	// The hub ends the session once it has handled the answer.
	for {
		m, _, err := ReadMsg(p.c)
		if err != nil {
			break
		}
		if m.Chunk != nil {
			WriteMsg(p.c, Msg{Ack: &Ack{No: m.Chunk.No}})
		}
	}
	v, _ := mustGet(t, hub.st, SystemPrefix+"policy", "sw").Get("policy")
	if check {
		if hub.st.HeldOf(dev).Contains(2) {
			t.Error("the hub holds the write whose record it refused")
		}
		mu.Lock()
		if len(asked) != 1 || asked[0] != "device "+SystemPrefix+"policy/sw" {
			t.Errorf("AdmitRecord saw %q", asked)
		}
		mu.Unlock()
		healthy(t, hub, "after a forged system record")
	}
	return v.String()
}
