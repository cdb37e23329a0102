package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// TestStateTransferNewDevice: a hub holds 1,000 records of 20 fields
// after 101,000 writes (their creation, then 100,000 single-field
// updates, brought by one session from a replica in the test process); a
// new device that joins it receives the records' states, not the
// history: the bytes it received (its replicad_sync_bytes_received_total)
// stay within 1.2x the final records' state plus 64 KiB (the system
// tables, the handshake, the watch connection), where the log took the
// loader's session, and it shows every record as the hub does.
func TestStateTransferNewDevice(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	const records, updates, fields = 1000, 100_000, 20

	// The history, made in a store here and pushed to the hub.
	st, err := store.Open(store.Options{Dir: filepath.Join(t.TempDir(), "loader"), NoSync: true, ClusterID: "replicad"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	origin := hlc.NodeID(0x165667b19e3779f9)
	start := time.Now().UnixMilli() - 60_000
	last := make([]uint64, records)
	final := make([][fields]int, records)
	var batch []*crdt.Write
	seq := uint64(0)
	add := func(r int, fs []crdt.FieldValue) {
		seq++
		w := &crdt.Write{Table: "jobs", ID: fmt.Sprintf("j%04d", r), Origin: origin, Seq: seq,
			TS: hlc.New(start+int64(seq/100), uint16(seq%100)), Fields: fs}
		if last[r] > 0 {
			w.Ctx = crdt.VV{{Node: origin, Seq: last[r]}}
		}
		last[r] = seq
		if batch = append(batch, w); len(batch) == 10_000 {
			if _, err := st.ApplyRemote(clock, batch, nil); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	name := func(f int) string { return fmt.Sprintf("f%02d", f) }
	for r := range records {
		fs := make([]crdt.FieldValue, fields)
		for f := range fields {
			fs[f] = crdt.FieldValue{Name: name(f), Value: crdt.MustValue(fmt.Sprintf("job %d field %d: initial value", r, f))}
		}
		add(r, fs)
	}
	for i := range updates {
		r, f := (i*7919)%records, (i*31)%fields
		final[r][f] = i + 1
		add(r, []crdt.FieldValue{{Name: name(f), Value: crdt.MustValue(i + 1)}})
	}
	if _, err := st.ApplyRemote(clock, batch, nil); err != nil {
		t.Fatal(err)
	}
	var stateBytes int64
	for after := ""; ; {
		page, next, err := st.ScanRaw("jobs", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			stateBytes += int64(len("jobs") + len(r.ID) + len(r.Raw))
		}
		if after = next; next == "" {
			break
		}
	}
	loader := &replication.Local{Node: origin, Cluster: "replicad", Role: "device", Scope: replication.FullScope(), Clock: clock, Store: st}
	conn, err := net.Dial("tcp", hub.sync)
	if err != nil {
		t.Fatal(err)
	}
	sess := replication.NewSession(loader, true)
	if err := replication.RunConn(context.Background(), conn, sess, replication.ConnOptions{}); err != nil {
		t.Fatal(err)
	}
	logBytes := sess.Snapshot().BytesSent
	if sess.Snapshot().WritesSent != records+updates {
		t.Fatalf("the loader sent %+v", sess.Snapshot())
	}

	dev := startNode(t, "device", "--hub", hub.sync, "--gossip-addr", "off")
	c := dev.client()
	eventually(t, "the new device shows the hub's 1,000 records", func() error {
		n := 0
		for after := ""; ; {
			p, err := c.List(context.Background(), "jobs", after, 1000)
			if err != nil {
				return err
			}
			for _, rec := range p.Records {
				var r int
				fmt.Sscanf(rec.ID, "j%04d", &r)
				for f := range fields {
					want := strconv.Quote(fmt.Sprintf("job %d field %d: initial value", r, f))
					if v := final[r][f]; v > 0 {
						want = strconv.Itoa(v)
					}
					if got := string(rec.Fields[name(f)]); got != want {
						return fmt.Errorf("%s.%s is %s, want %s", rec.ID, name(f), got, want)
					}
				}
				n++
			}
			if after = p.Next; after == "" {
				break
			}
		}
		if n != records {
			return fmt.Errorf("%d records", n)
		}
		return nil
	})
	got := metric(t, dev, "replicad_sync_bytes_received_total")
	limit := 1.2*float64(stateBytes) + 64<<10
	t.Logf("new device received %.0f bytes; the final records' state is %d bytes; the history by the log took %d bytes", got, stateBytes, logBytes)
	if got > limit {
		t.Fatalf("the new device received %.0f bytes: over 1.2x the records' state (%d B) + 64 KiB", got, stateBytes)
	}
}

// metric reads one unlabelled metric of n's /metrics.
func metric(t *testing.T, n *node, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
