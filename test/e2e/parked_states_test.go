package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// TestParkedWritesClaimedByStates: a device whose clock runs an hour slow
// parks the writes its hub sends (they are beyond its clock bound). Its
// clock put right, it restarts after 600 more updates of the same
// records, so the hub catches it up by record states, which include the
// parked writes: the device drops them. It shows the hub's records and
// lists nothing parked (a write left parked there could never apply: its
// number is held, no peer sends it again). Meanwhile the debug digest says
// what the parked writes wait for (the fault harness prints it when a run
// does not converge).
func TestParkedWritesClaimedByStates(t *testing.T) {
	t.Setenv("REPLICAD_TESTING_DEBUG_API", "1") // the digest's parked_by_origin
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	dev := startNode(t, "dev", "--hub", hub.sync, "--gossip-addr", "off", "--pull-interval", "1h", "--clock-offset", "-1h")

	// The writes come from a replica in the test process, pushed to the
	// hub by a sync session.
	st, err := store.Open(store.Options{Dir: filepath.Join(t.TempDir(), "writer"), NoSync: true, ClusterID: "replicad"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	writer := &replication.Local{Node: st.NodeID(), Cluster: "replicad", Role: "device", Scope: replication.FullScope(), Clock: clock, Store: st}
	n := 0
	update := func(count int) {
		t.Helper()
		for range count {
			id := fmt.Sprintf("j%d", n%3)
			n++
			if _, err := st.Write(clock, "jobs", id, []crdt.FieldValue{{Name: "n", Value: crdt.MustValue(n)}}, false); err != nil {
				t.Fatal(err)
			}
		}
		conn, err := net.Dial("tcp", hub.sync)
		if err != nil {
			t.Fatal(err)
		}
		sess := replication.NewSession(writer, true)
		if err := replication.RunConn(context.Background(), conn, sess, replication.ConnOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := sess.Snapshot().WritesSent; got != uint64(count) {
			t.Fatalf("the writer sent %d writes, want %d", got, count)
		}
	}
	type parkedList struct {
		Parked []struct {
			Origin string `json:"origin"`
			Seq    uint64 `json:"seq"`
		} `json:"parked"`
		Total int `json:"total"`
	}
	update(10)
	dev.mustCLI("sync")
	var p parkedList
	mustGet(t, dev.api, "/v1/parked?limit=1000", &p)
	var mine []uint64
	for _, w := range p.Parked {
		if w.Origin == st.NodeID().String() {
			mine = append(mine, w.Seq)
		}
	}
	if !slices.Equal(mine, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("the slow device parked %+v, want the writer's 10 writes", p)
	}
	// The debug digest says what they wait for: the clock, not a write.
	var d dDigest
	mustGet(t, dev.api, "/v1/debug/digest", &d)
	if w := d.ParkedBy[st.NodeID().String()]; w.Count != 10 || w.Lo != 1 || w.Hi != 10 || w.Held != 0 || w.AheadNowMs < 3_000_000 {
		t.Fatalf("debug digest: parked by origin %+v", d.ParkedBy)
	}

	dev.stop()
	update(600)
	dev.args = []string{"--hub", hub.sync, "--gossip-addr", "off", "--pull-interval", "1h"}
	dev.start()
	dev.mustCLI("sync")
	want := map[string]string{}
	for i := range 3 {
		r, err := hub.client().Get(context.Background(), "jobs", fmt.Sprintf("j%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want[r.ID] = fieldsOf(t, r)
	}
	eventually(t, "the device shows the hub's records, nothing parked", func() error {
		for id, w := range want {
			r, err := dev.client().Get(context.Background(), "jobs", id)
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != w {
				return fmt.Errorf("%s = %s, want %s", id, got, w)
			}
		}
		var p parkedList
		if err := getJSON(dev.api, "/v1/parked", &p, 5*time.Second); err != nil {
			return err
		}
		if p.Total != 0 {
			return fmt.Errorf("%d writes still parked: %+v", p.Total, p.Parked)
		}
		return nil
	})
}
