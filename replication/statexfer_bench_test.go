package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// stateHub builds a hub holding 1,000 records of 20 fields made by one
// origin, then 100,000 single-field updates of random fields: 101,000
// writes. It returns the hub and the bytes of the final records' state:
// each record's encoding plus its table and id.
func stateHub(b *testing.B, records, updates int) (*benchNode, int64) {
	hub := openBenchNode(b, filepath.Join(b.TempDir(), "hub"), benchHub, "hub", false, true)
	hub.local.Arbitrated = func(string) bool { return false } // lww: any hub sends states
	const fields = 20
	last := make([]uint64, records)
	start := time.Now().UnixMilli() - int64((records+updates)/100) - 1000
	var batch []*crdt.Write
	seq := uint64(0)
	flush := func(force bool) {
		if len(batch) == 10000 || force && len(batch) > 0 {
			res, err := hub.st.ApplyRemote(hub.local.Clock, batch, nil)
			if err != nil || res.Applied != len(batch) {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	add := func(r int, fs []crdt.FieldValue) {
		seq++
		i := int(seq)
		w := &crdt.Write{Table: "work_orders", ID: fmt.Sprintf("wo-%05d", r), Origin: benchOther, Seq: seq,
			TS: hlc.New(start+int64(i/100), uint16(i%100)), Fields: fs}
		if last[r] > 0 {
			w.Ctx = crdt.VV{{Node: benchOther, Seq: last[r]}}
		}
		last[r] = seq
		batch = append(batch, w)
		flush(false)
	}
	name := func(f int) string { return fmt.Sprintf("f%02d_%s", f, benchFields[f%len(benchFields)]) }
	for r := range records {
		fs := make([]crdt.FieldValue, fields)
		for f := range fields {
			fs[f] = crdt.FieldValue{Name: name(f), Value: benchValues[(r*fields+f)%len(benchValues)]}
		}
		add(r, fs)
	}
	// A fixed pseudo-random sequence (xorshift), the same in every run.
	x := uint64(0x9e3779b97f4a7c15)
	for i := range updates {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f := int(x>>32) % fields
		add(int(x%uint64(records)), []crdt.FieldValue{{Name: name(f), Value: benchValues[i%len(benchValues)]}})
	}
	flush(true)
	var state int64
	after := ""
	for {
		page, next, err := hub.st.ScanRaw("work_orders", after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page {
			state += int64(len("work_orders") + len(r.ID) + len(r.Raw))
		}
		if next == "" {
			break
		}
		after = next
	}
	return hub, state
}

// catchUpOnce runs one catch-up of a fresh durable device from hub over
// loopback TCP and returns its duration, the bytes the hub sent and the
// bytes both sides sent.
func catchUpOnce(b *testing.B, hub *benchNode, noState bool, want uint64) (time.Duration, uint64, uint64, Stats) {
	dev := openBenchNode(b, filepath.Join(b.TempDir(), "dev"), benchDevice, "device", false, false)
	defer dev.st.Close()
	dev.local.NoStateTransfer = noState
	ca, cb := tcpPair(b)
	sd, sh := NewSession(dev.local, true), NewSession(hub.local, false)
	var wg sync.WaitGroup
	var ed, eh error
	wg.Add(2)
	t0 := time.Now()
	go func() { defer wg.Done(); ed = RunConn(context.Background(), ca, sd, ConnOptions{}) }()
	go func() { defer wg.Done(); eh = RunConn(context.Background(), cb, sh, ConnOptions{}) }()
	wg.Wait()
	d := time.Since(t0)
	if ed != nil || eh != nil {
		b.Fatalf("device: %v; hub: %v", ed, eh)
	}
	if h := dev.st.HeldOf(benchOther); h.Contig != want {
		b.Fatalf("device holds %+v, want 1..%d", h, want)
	}
	if got, _, err := dev.st.Scan("work_orders", "", 2000); err != nil || len(got) != 1000 {
		b.Fatalf("device holds %d records (%v)", len(got), err)
	}
	st := sh.Snapshot()
	return d, st.BytesSent, st.BytesSent + sd.Snapshot().BytesSent, sd.Snapshot()
}

// BenchmarkStateTransfer: a new device catches up from a hub holding
// 1,000 records × 20 fields after 101,000 writes (the records' creation,
// then 100,000 single-field updates), over loopback TCP, RunConn on both
// ends, the device's store on disk and durable. Measured: the catch-up by
// record states (what a device gets by default), and in the same run the
// baselines: the bytes of the final records' state (each record's
// encoding with its table and id), and today's catch-up by the log (the
// same device with state transfer off). Targets: the hub sends at most
// 1.2x the final state's bytes, and the catch-up is no slower than the
// log's.
func BenchmarkStateTransfer(b *testing.B) {
	const records, updates = 1000, 100_000
	b.StopTimer()
	hub, stateBytes := stateHub(b, records, updates)
	want := uint64(records + updates)
	var dState, dLog time.Duration
	var sentState, sentLog, wireState, wireLog uint64
	for range b.N {
		b.StartTimer()
		d, sent, wire, st := catchUpOnce(b, hub, false, want)
		b.StopTimer()
		if st.StateRecords != records || st.WritesApplied != 0 {
			b.Fatalf("the device was not caught up by states: %+v", st)
		}
		dState += d
		sentState, wireState = sent, wire
		d, sent, wire, _ = catchUpOnce(b, hub, true, want)
		dLog += d
		sentLog, wireLog = sent, wire
	}
	n := float64(b.N)
	b.ReportMetric(dState.Seconds()/n, "state-s")
	b.ReportMetric(dLog.Seconds()/n, "log-s")
	b.ReportMetric(dState.Seconds()/dLog.Seconds(), "state/log-time")
	b.ReportMetric(float64(sentState), "state-B")
	b.ReportMetric(float64(wireState), "state-wire-B")
	b.ReportMetric(float64(sentLog), "log-B")
	b.ReportMetric(float64(wireLog), "log-wire-B")
	b.ReportMetric(float64(stateBytes), "records-B")
	b.ReportMetric(float64(sentState)/float64(stateBytes), "sent/records")
	b.ReportMetric(float64(sentLog)/float64(stateBytes), "log/records")
	// What the sender weighs (statexfer.go): the log's stored bytes and
	// what the chunk encoding sends of them.
	logStored, err := hub.st.LogBytes(benchOther, []store.SeqRange{{Lo: 1, Hi: want}}, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(logStored), "log-stored-B")
	b.ReportMetric(float64(sentLog)/float64(logStored), "log-wire/stored")
}
