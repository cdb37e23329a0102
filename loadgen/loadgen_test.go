package loadgen

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
)

func TestStats(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median %v", m)
	}
	if !math.IsNaN(Median(nil)) {
		t.Fatal("median of nothing")
	}
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	if p := Percentile(lat, 50); p != 500*time.Microsecond {
		t.Fatalf("p50 %v", p)
	}
	if p := Percentile(lat, 99); p != 990*time.Microsecond {
		t.Fatalf("p99 %v", p)
	}
	if p := Percentile(lat[:1], 99); p != time.Microsecond {
		t.Fatalf("p99 of one %v", p)
	}
	if s := linearSlope([]float64{0, 1, 2, 3}, []float64{10, 12, 14, 16}); s != 2 {
		t.Fatalf("slope %v", s)
	}
	var r Result
	r.Add("x", "u", 3)
	r.Add("x", "u", 1)
	r.Add("x", "u", 2)
	if m, ok := r.Get("x"); !ok || m.Value != 2 || len(m.Samples) != 3 {
		t.Fatalf("metric %+v", m)
	}
}

func TestDocRoundTrip(t *testing.T) {
	d := &Doc{Version: 1, Host: thisHost(), Results: []Result{{Name: "a", Metrics: []Metric{{Name: "m", Unit: "s", Value: 1, Samples: []float64{1}}}}}}
	p := filepath.Join(t.TempDir(), "d.json")
	if err := WriteDoc(p, d); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDoc(p)
	if err != nil || got.Results[0].Metrics[0].Samples[0] != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	os.WriteFile(p, []byte(`{"version":2}`), 0o644)
	if _, err := ReadDoc(p); err == nil {
		t.Fatal("version 2 accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP x y
# TYPE replicad_writes_applied_remote_total counter
replicad_writes_applied_remote_total 1234
replicad_peer_sync_failures{peer="a",node="1"} 2
replicad_peer_sync_failures{peer="b",node="2"} 3
process_resident_memory_bytes 1.2345e+08
`
	m, err := ParseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["replicad_writes_applied_remote_total"] != 1234 || m["replicad_peer_sync_failures"] != 5 || m["process_resident_memory_bytes"] != 1.2345e8 {
		t.Fatalf("%v", m)
	}
}

// TestBaselines runs each baseline briefly: they measure something.
func TestBaselines(t *testing.T) {
	dir := t.TempDir()
	r, err := RawSyncedSets(filepath.Join(dir, "a"), 4, 40, 0, 280)
	if err != nil || len(r.Latencies) != 40 || r.PerSecond <= 0 || r.Latencies[0] > r.Latencies[39] {
		t.Fatalf("%d latencies, %v/s, %v", len(r.Latencies), r.PerSecond, err)
	}
	rate, err := RawBatched(filepath.Join(dir, "b"), 3, 250, 100)
	if err != nil || rate <= 0 {
		t.Fatalf("%v %v", rate, err)
	}
	bps, err := LoopbackThroughput(1 << 20)
	if err != nil || bps <= 0 {
		t.Fatalf("%v %v", bps, err)
	}
}

// TestSimDevicesAndLoader: simulated devices and a loader sync with an
// in-process hub over the real protocol; the hub ends up holding every
// write, and the devices hold only their own table.
func TestSimDevicesAndLoader(t *testing.T) {
	hub := newInProcessHub(t, filepath.Join(t.TempDir(), "hub"), "t", 2)
	l, err := NewLoader(filepath.Join(t.TempDir(), "loader"), "t", "bulk", 300, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if st, err := l.Sync(context.Background(), hub.addr); err != nil || st.WritesSent != 300 {
		t.Fatalf("loader: %+v %v", st, err)
	}
	devs := make([]*SimDevice, 5) // more than the hub's 2 sessions: some are refused and retry
	for i := range devs {
		if devs[i], err = NewSimDevice(i, 10, "t"); err != nil {
			t.Fatal(err)
		}
		defer devs[i].Close()
	}
	fanin(t, hub.addr, devs, 30)
	fanin(t, hub.addr, devs, 30) // a second round: only the new writes
	if got := hub.st.HeldOf(LoaderOrigin).Contig; got != 300 {
		t.Fatalf("hub holds %d loaded writes", got)
	}
	rec, err := hub.st.Get("bulk", "r00000299")
	if err != nil {
		t.Fatal(err)
	}
	nf := 0
	rec.Visible(func(string, crdt.Value) { nf++ })
	if nf != 3 {
		t.Fatalf("loaded record has %d fields, want 3", nf)
	}
	for _, d := range devs {
		if got := hub.st.HeldOf(d.Node()).Contig; got != 60 || d.Written() != 60 {
			t.Fatalf("hub holds %d of device %v's %d writes", got, d.Node(), d.Written())
		}
		// The device holds the loader's writes as empties (outside its
		// scope), so it has nothing left to receive.
		if got := d.st.HeldOf(LoaderOrigin).Contig; got != 300 {
			t.Fatalf("device holds %d of the loader's 300 (as empties)", got)
		}
		if _, err := d.st.Get("bulk", "r00000001"); err == nil {
			t.Fatal("a device holds a record outside its scope")
		}
	}
}

func TestMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"no-such-scenario"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown scenario") {
		t.Fatalf("code %d, %s", code, errb.String())
	}
	if code := Main(context.Background(), []string{"--devices", "x", "hub-fanin"}, &out, &errb); code != 2 {
		t.Fatalf("bad --devices: code %d", code)
	}
	if code := Main(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help: code %d", code)
	}
}

// TestScenariosAgainstAgents builds replicad and runs every scenario at
// a tiny size against real agent processes.
func TestScenariosAgainstAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts agents")
	}
	bin := filepath.Join(t.TempDir(), "replicad")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/replicad/replicad/cmd/replicad").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var log bytes.Buffer
	c := &Config{Bin: bin, Dir: t.TempDir(), Log: &log, Runs: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	check := func(r *Result, err error, metrics ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		for _, m := range metrics {
			v, ok := r.Get(m)
			if !ok || len(v.Samples) == 0 || !(v.Value > 0) {
				t.Fatalf("%s: metric %s = %+v", r.Name, m, v)
			}
		}
	}
	r, err := WriteLatency(ctx, c, WriteLatencyOpts{Writes: 30})
	check(r, err, "p50", "p99", "raw-p99", "http-alone-p99", "get-p99")
	if m, _ := r.Get("p99"); len(m.Samples) != 2 {
		t.Fatalf("%d runs of p99", len(m.Samples))
	}
	c.Runs = 1
	r, err = WriteThroughput(ctx, c, WriteThroughputOpts{Clients: 4, Duration: 500 * time.Millisecond})
	check(r, err, "writes/s", "raw-writes/s", "ratio")
	r, err = HubFanin(ctx, c, HubFaninOpts{Devices: 3, Writes: 20})
	check(r, err, "changes/s", "raw-changes/s", "hub-rss")
	r, err = InitialSync(ctx, c, InitialSyncOpts{Records: 500, Fields: 2})
	check(r, err, "seconds", "loopback-seconds", "MB")
	r, err = HubMemory(ctx, c, HubMemoryOpts{Records: 300, Devices: 3, Steady: 3 * time.Second, Every: 300 * time.Millisecond, Writes: 2, Sample: 400 * time.Millisecond})
	check(r, err, "rss-end", "store-size", "sessions")
}
