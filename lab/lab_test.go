package lab

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/replication"
)

// parse reads an inline scenario (one sweep point).
func parse(t *testing.T, src string) *Scenario {
	t.Helper()
	scs, err := ParseScenario("inline.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return scs[0]
}

func run(t *testing.T, sc *Scenario, strategy string, seed uint64) *RunResult {
	t.Helper()
	st, err := Lookup(strategy)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runOne(sc, st, seed)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func load(t *testing.T, name string) []*Scenario {
	t.Helper()
	scs, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return scs
}

// TestWorkOrderAgreesWithDaemon: the seed's work order under each policy
// shows what replication/policy_test.go TestPoliciesWorkOrder expects of
// the daemon's store, sessions and arbiter (and test/e2e's policy test of
// the binaries): after the edits of different fields, and after both
// edited Start Time (the technician's change reaching the hub last).
func TestWorkOrderAgreesWithDaemon(t *testing.T) {
	sc := load(t, "work-order")[0]
	for _, tc := range []struct {
		strategy           string
		wantStart, wantEnd string
		wantSame           string
		wantErrors         bool
		conflict           bool
	}{
		// The rows of TestPoliciesWorkOrder.
		{"lww", `"09:00"`, `"12:00"`, `"07:30"`, true, false},
		{"client-wins", `"09:00"`, `"12:00"`, `"10:00"`, true, false},
		{"server-wins", `"08:00"`, `"12:00"`, `"07:30"`, true, false},
		{"manual", `"09:00"`, `"12:00"`, `"07:30"`, false, true},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			r := run(t, sc, tc.strategy, 1)
			seen := 0
			for _, snap := range r.Snapshots {
				rec := snap.Records["wo/WO-1001"]
				switch snap.Label {
				case "different-fields":
					seen++
					if rec.Fields["start"] != tc.wantStart || rec.Fields["end"] != tc.wantEnd {
						t.Errorf("%s after the different-field edits: start %s end %s, want %s %s", snap.Node, rec.Fields["start"], rec.Fields["end"], tc.wantStart, tc.wantEnd)
					}
				case "same-field":
					seen++
					if rec.Fields["start"] != tc.wantSame {
						t.Errorf("%s after the same-field edits: start %s, want %s", snap.Node, rec.Fields["start"], tc.wantSame)
					}
					if got := len(rec.Conflicts) > 0; got != tc.conflict {
						t.Errorf("%s: conflict shown %v, want %v (%v)", snap.Node, got, tc.conflict, rec.Conflicts)
					}
				}
			}
			if seen != 4 {
				t.Fatalf("%d snapshots, want 4", seen)
			}
			if got := r.Metrics.SyncErrors > 0; got != tc.wantErrors {
				t.Errorf("%d sync errors, want some: %v", r.Metrics.SyncErrors, tc.wantErrors)
			}
			if !r.Metrics.Converged {
				t.Error("not converged")
			}
		})
	}
}

// TestDeterminism: the same scenario, seeds and strategies give the same
// bytes in every output file (plots included), whatever the number of
// workers and with progress reported or not; another seed gives other
// results.
func TestDeterminism(t *testing.T) {
	scs := load(t, "clock-ahead")[:1]
	render := func(opt Options) Output {
		runs, err := Run(scs, opt)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Render(scs, runs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a := render(Options{Seeds: []uint64{7, 8}, Workers: 1})
	var progressOut bytes.Buffer
	b := render(Options{Seeds: []uint64{7, 8}, Workers: 2, Progress: newProgress(&progressOut, false, time.Now).update})
	if !strings.Contains(progressOut.String(), "runs done") {
		t.Errorf("no progress reported: %q", progressOut.String())
	}
	if len(a) != len(b) || len(a) < 20 {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	var names []string
	for k := range a {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between two runs", k)
		}
	}
	c := render(Options{Seeds: []uint64{9}, Workers: 2})
	if bytes.Equal(a["runs.csv"], c["runs.csv"]) {
		t.Error("seeds 7 and 9 gave the same runs")
	}
}

// TestSameWorkloadAcrossStrategies: a seed's workload (writes, values,
// offline periods) is the same whatever the strategy.
func TestSameWorkloadAcrossStrategies(t *testing.T) {
	sc := parse(t, `
name = "same-workload"
duration = "6h"
records = 5
delete_fraction = 0.05
hub "office" {}
device "d" {
  count = 4
  write_rate = 6
  offline {
    start = "1h"
    duration = "2h"
    every = "4h"
    jitter = "1h"
  }
}
`)
	var got []string
	for _, name := range DefaultStrategies {
		m := run(t, sc, name, 3).Metrics
		got = append(got, fmt.Sprintf("%d/%d/%d", m.Writes, m.Deletes, m.FieldWrites))
	}
	for _, g := range got[1:] {
		if g != got[0] {
			t.Fatalf("workloads differ between strategies: %v", got)
		}
	}
	if got[0] == "0/0/0" {
		t.Fatal("no writes")
	}
}

// TestOneWriteMetrics: one write pushed from a device to the hub over a
// link of 100 ms each way. The session: Hello (arrives at 100 ms),
// Welcome and the hub's Have (200), the device's Have and its Chunk
// (300: the hub holds the write), the hub's Done and its Ack (400), the
// device's Done (500). So: converged 300 ms after the write, staleness
// 300 ms, 8 messages, one session.
func TestOneWriteMetrics(t *testing.T) {
	sc := parse(t, `
name = "one-write"
duration = "10s"
network {
  delay = "100ms"
  sync_interval = "0"
}
hub "hub" {}
device "dev" {}
event {
  at = "1s"
  node = "dev"
  action = "write"
  record = "r1"
  fields = { a = 1 }
}
`)
	var sizes []int
	var types []string
	onSend = func(m replication.Msg, size int) {
		sizes = append(sizes, size)
		types = append(types, m.Type().String())
		enc, err := replication.EncodeMsg(m)
		if err != nil || size != len(enc)+4 {
			t.Errorf("%v: counted %d bytes, the frame is %d", m.Type(), size, len(enc)+4)
		}
	}
	defer func() { onSend = nil }()
	for _, strat := range DefaultStrategies {
		sizes, types = nil, nil
		m := run(t, sc, strat, 1).Metrics
		if !m.Converged || m.ConvergenceMs != 300 {
			t.Errorf("%s: converged %v after %d ms, want 300", strat, m.Converged, m.ConvergenceMs)
		}
		if m.StalenessMeanMs != 300 || m.StalenessMaxMs != 300 {
			t.Errorf("%s: staleness mean %v max %v, want 300", strat, m.StalenessMeanMs, m.StalenessMaxMs)
		}
		if m.Messages != 8 || m.Sessions != 1 || m.SessionsCut != 0 {
			t.Errorf("%s: %d messages, %d sessions (%d cut), want 8, 1, 0 (%v)", strat, m.Messages, m.Sessions, m.SessionsCut, types)
		}
		total := 0
		for _, s := range sizes {
			total += s
		}
		if m.Bytes != int64(total) || m.BytesPerWrite != float64(total) {
			t.Errorf("%s: %d bytes (%v per write), the frames sent sum to %d", strat, m.Bytes, m.BytesPerWrite, total)
		}
		if m.Writes != 1 || m.LostUpdates != 0 || m.Conflicts != 0 || m.Rejected != 0 {
			t.Errorf("%s: %+v", strat, m)
		}
	}
}

// TestSameFieldMetrics: the same-field scenario, by hand. tech-a sets
// status at 1h, tech-b (later stamp) at 1h30; tech-b reaches the office
// first (2h), tech-a last (2h10).
func TestSameFieldMetrics(t *testing.T) {
	sc := load(t, "same-field")[0]
	for _, tc := range []struct {
		strategy                               string
		lost, conflicts, rejected, resolutions int
		final                                  string
	}{
		{"lww", 1, 0, 0, 0, `"parts-needed"`},           // tech-a's "done" lost to a later stamp
		{"client-wins", 1, 0, 0, 0, `"done"`},           // tech-b's lost: tech-a arrived last
		{"server-wins", 0, 0, 1, 0, `"parts-needed"`},   // tech-a's change rejected
		{"manual", 0, 1, 0, 1, `"parts-needed"`},        // shown, then a person keeps the later stamp
		{"multi-value", 0, 1, 0, 0, `"parts-needed"`},   // both kept
		{"wallclock-lww", 1, 0, 0, 0, `"parts-needed"`}, // as lww: no skew here
	} {
		m := run(t, sc, tc.strategy, 1)
		got := m.Metrics
		if got.LostUpdates != tc.lost || got.Conflicts != tc.conflicts || got.Rejected != tc.rejected || got.Resolutions != tc.resolutions {
			t.Errorf("%s: lost %d conflicts %d rejected %d resolutions %d, want %d %d %d %d", tc.strategy,
				got.LostUpdates, got.Conflicts, got.Rejected, got.Resolutions, tc.lost, tc.conflicts, tc.rejected, tc.resolutions)
		}
		if s := m.Final["wo/WO-1002"].Fields["status"]; s != tc.final {
			t.Errorf("%s: status ends %s, want %s", tc.strategy, s, tc.final)
		}
		if !got.Converged || got.Writes != 3 || got.FieldWrites != 4 {
			t.Errorf("%s: converged %v, %d writes, %d field writes", tc.strategy, got.Converged, got.Writes, got.FieldWrites)
		}
	}
}

// TestDeleteUpdateMetrics: WO-1 is updated after the office deleted it
// (the update stamped later), WO-2 before (the delete stamped later); the
// technician's changes reach the office last.
func TestDeleteUpdateMetrics(t *testing.T) {
	sc := load(t, "delete-update")[0]
	for _, tc := range []struct {
		strategy       string
		lost, rejected int
		wo1, wo2       bool // exist at the end
	}{
		{"lww", 2, 0, true, false},          // WO-1's delete lost, WO-2's update lost
		{"client-wins", 2, 0, true, true},   // both deletes lost: the updates arrived last
		{"server-wins", 0, 2, false, false}, // both updates rejected
		{"wallclock-lww", 2, 0, true, false},
	} {
		r := run(t, sc, tc.strategy, 1)
		if r.Metrics.LostUpdates != tc.lost || r.Metrics.Rejected != tc.rejected {
			t.Errorf("%s: lost %d rejected %d, want %d %d", tc.strategy, r.Metrics.LostUpdates, r.Metrics.Rejected, tc.lost, tc.rejected)
		}
		if r.Final["wo/WO-1"].Exists != tc.wo1 || r.Final["wo/WO-2"].Exists != tc.wo2 {
			t.Errorf("%s: WO-1 exists %v, WO-2 %v; want %v %v", tc.strategy, r.Final["wo/WO-1"].Exists, r.Final["wo/WO-2"].Exists, tc.wo1, tc.wo2)
		}
	}
	// Manual and multi-value: nothing lost, each record shows the delete
	// against the update.
	for _, s := range []string{"manual", "multi-value"} {
		r := run(t, sc, s, 1)
		if r.Metrics.LostUpdates != 0 || r.Metrics.Conflicts == 0 {
			t.Errorf("%s: lost %d conflicts %d", s, r.Metrics.LostUpdates, r.Metrics.Conflicts)
		}
	}
}

// TestClockBehind: a device whose clock is an hour behind reads the
// office's value and then changes it. With HLC and a bound on remote
// clocks wider than the skew, its change stamps after the value it saw
// and supersedes it; with plain wall-clock stamps and no causal context
// the office's earlier value wins and the device's change is lost. With
// replicad's default bound (1 minute) the device parks the office's
// write (its stamp is an hour ahead of the device's clock) and never
// applies it: its change is concurrent, stamped earlier, and lost, and
// the replicas do not converge.
func TestClockBehind(t *testing.T) {
	src := `
name = "behind"
duration = "10m"
settle = "1h"
max_clock_offset = "%s"
network {
  delay = "50ms"
  sync_interval = "0"
}
hub "office" {}
device "slow" {
  clock_skew = "-1h"
}
event {
  at = "0s"
  node = "office"
  action = "write"
  record = "r"
  fields = { status = "a" }
}
event {
  at = "1m"
  node = "slow"
  action = "sync"
}
event {
  at = "2m"
  node = "slow"
  action = "write"
  record = "r"
  fields = { status = "b" }
}
`
	for _, tc := range []struct {
		bound, strategy string
		lost            int
		final           string
		converged       bool
	}{
		{"2h", "lww", 0, `"b"`, true},
		{"2h", "wallclock-lww", 1, `"a"`, true},
		{"1m", "lww", 1, `"a"`, false},
		{"1m", "wallclock-lww", 1, `"a"`, true},
	} {
		sc := parse(t, fmt.Sprintf(src, tc.bound))
		r := run(t, sc, tc.strategy, 1)
		m := r.Metrics
		if m.LostUpdates != tc.lost || r.Final["workorders/r"].Fields["status"] != tc.final || m.Converged != tc.converged {
			t.Errorf("bound %s, %s: lost %d, status %s, converged %v; want %d %s %v", tc.bound, tc.strategy,
				m.LostUpdates, r.Final["workorders/r"].Fields["status"], m.Converged, tc.lost, tc.final, tc.converged)
		}
	}
}

// TestClockAheadParks: a device an hour ahead writes at 0; the hub (max
// offset 1 minute) parks the write at the push (0 s) and at the sync at
// 58 min, and applies it at the sync at 60 min, 300 ms later. Wall-clock
// stamps are never parked.
func TestClockAheadParks(t *testing.T) {
	sc := parse(t, `
name = "ahead"
duration = "61m"
max_clock_offset = "1m"
network {
  delay = "100ms"
  sync_interval = "0"
}
hub "office" {}
device "fast" {
  clock_skew = "1h"
}
event {
  at = "0s"
  node = "fast"
  action = "write"
  record = "r"
  fields = { status = "a" }
}
event {
  at = "58m"
  node = "fast"
  action = "sync"
}
event {
  at = "60m"
  node = "fast"
  action = "sync"
}
`)
	m := run(t, sc, "lww", 1).Metrics
	if m.Parked != 2 || !m.Converged || m.ConvergenceMs != 3_600_300 {
		t.Errorf("lww: parked %d, converged %v after %d ms; want 2, true, 3600300", m.Parked, m.Converged, m.ConvergenceMs)
	}
	m = run(t, sc, "wallclock-lww", 1).Metrics
	if m.Parked != 0 || !m.Converged || m.ConvergenceMs != 300 {
		t.Errorf("wallclock-lww: parked %d, converged %v after %d ms; want 0, true, 300", m.Parked, m.Converged, m.ConvergenceMs)
	}
}

// TestNoHubTentative: without a hub, arbitrated policies leave every
// write tentative; the others have nothing tentative.
func TestNoHubTentative(t *testing.T) {
	sc := parse(t, `
name = "no-hub"
duration = "1h"
topology = "mesh"
network {
  sync_interval = "5m"
}
device "d" {
  count = 3
}
event {
  at = "1m"
  node = "d-1"
  action = "write"
  record = "r"
  fields = { a = 1 }
}
event {
  at = "2m"
  node = "d-3"
  action = "write"
  record = "r"
  fields = { b = 2 }
}
`)
	for _, s := range DefaultStrategies {
		m := run(t, sc, s, 1).Metrics
		want := 0
		if s == "client-wins" || s == "server-wins" {
			want = 2
		}
		if m.Tentative != want || !m.Converged || m.LostUpdates != 0 {
			t.Errorf("%s: %d tentative (want %d), converged %v, lost %d", s, m.Tentative, want, m.Converged, m.LostUpdates)
		}
	}
}

// TestPartitionCutsSessions: a partition between the hub and a device
// stops their sessions until it heals; convergence is measured from the
// heal.
func TestPartitionCutsSessions(t *testing.T) {
	sc := parse(t, `
name = "partition"
duration = "2h"
network {
  delay = "100ms"
  sync_interval = "0"
}
hub "hub" {}
device "dev" {}
partition {
  start = "10m"
  duration = "30m"
  between = ["hub", "dev"]
}
event {
  at = "20m"
  node = "dev"
  action = "write"
  record = "r"
  fields = { a = 1 }
}
`)
	m := run(t, sc, "lww", 1).Metrics
	// Healed at 40 min: the session starts then and the write is held
	// by the hub 300 ms later; staleness from 20 min to 40 min 300 ms.
	if !m.Converged || m.ConvergenceMs != 300 || m.StalenessMaxMs != 20*60_000+300 {
		t.Errorf("converged %v after %d ms, staleness %d ms", m.Converged, m.ConvergenceMs, m.StalenessMaxMs)
	}
}

// TestShippedScenarios: every shipped scenario parses and its first
// sweep point converges under every strategy (seed 1).
func TestShippedScenarios(t *testing.T) {
	names := ShippedNames()
	for _, want := range []string{"work-order", "same-field", "offline-week", "delete-update", "clock-ahead", "site-p2p", "field-team"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("scenario %s not shipped", want)
		}
	}
	for _, name := range names {
		sc := *load(t, name)[0]
		if len(sc.Events) == 0 && sc.Duration > 4*time.Hour {
			sc.Duration = 4 * time.Hour // fast enough for make test
		}
		runs, err := Run([]*Scenario{&sc}, Options{Seeds: []uint64{1}, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if !r.Metrics.Converged {
				t.Errorf("%s/%s: not converged (%+v)", name, r.Strategy, r.Metrics)
			}
			if r.Metrics.Writes == 0 {
				t.Errorf("%s/%s: no writes", name, r.Strategy)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		`name = "x"`, // no duration
		`name = "x"
duration = "1h"
hub "a" {}`, // one node
		`name = "x"
duration = "1h"
strategies = ["nope"]
hub "a" {}
device "b" {}`,
		`name = "x"
duration = "1h"
topology = "ring"
hub "a" {}
device "b" {}`,
		`name = "x"
duration = "1h"
hub "a" {}
device "b" {}
event {
  at = "1m"
  node = "c"
  action = "sync"
}`,
		`name = "x"
duration = "1h"
device "b" {
  count = 2
}`, // hub-and-spoke without a hub
	} {
		scs, err := ParseScenario("x.hcl", []byte(src))
		if err == nil {
			_, err = Run(scs, Options{})
		}
		if err == nil {
			t.Errorf("no error for %q", src)
		}
	}
	if d, err := ParseDuration("1d12h"); err != nil || d.Hours() != 36 {
		t.Errorf("1d12h = %v, %v", d, err)
	}
}

func ExampleSummaryTable() {
	rows := Summarize([]*RunResult{
		{Strategy: "lww", Seed: 1, Metrics: Metrics{Writes: 10, LostUpdates: 2}},
		{Strategy: "lww", Seed: 2, Metrics: Metrics{Writes: 10, LostUpdates: 4}},
	})
	fmt.Print(rows[0].LostUpdates)
	// Output: 3 ± 1.41
}

// OfficeWins is docs/lab.md's example strategy: field-level server
// priority, carried out by the hub.
type OfficeWins struct{ Base }

func (OfficeWins) Name() string     { return "office-wins" }
func (OfficeWins) Arbitrated() bool { return true }

func (OfficeWins) Judge(w *crdt.Write, out *crdt.Outcome, hub hlc.NodeID, _ policy.Rejected) policy.Decision {
	var d policy.Decision
	if w.Delete || w.Origin == hub || out.Duplicate || out.NotReady {
		return d
	}
	for i, fo := range out.Fields {
		if fo.Dead || len(fo.Concurrent) == 0 {
			continue
		}
		keep := fo.Concurrent[len(fo.Concurrent)-1] // sorted by stamp
		mine := crdt.Entry{Origin: w.Origin, Seq: w.Seq, TS: w.TS, Value: w.Fields[i].Value}
		v := keep.Value
		if keep.Delete {
			v = crdt.Cleared
		}
		d.Fields = append(d.Fields, crdt.FieldValue{Name: fo.Name, Value: v})
		d.Losses = append(d.Losses, policy.Loss{Field: fo.Name, Losing: mine, Winning: keep})
	}
	return d
}

// TestCustomStrategy: a strategy from outside the package (the docs'
// example) runs through the same machinery: the office's value stands
// against a technician's later-stamped concurrent change, which is lost;
// under lww the opposite.
func TestCustomStrategy(t *testing.T) {
	Register(OfficeWins{})
	sc := parse(t, `
name = "custom"
duration = "20m"
network {
  sync_interval = "0"
}
hub "office" {}
device "tech" {}
event {
  at = "0s"
  node = "office"
  action = "write"
  record = "r"
  fields = { status = "a" }
}
event {
  at = "1m"
  node = "tech"
  action = "sync"
}
event {
  at = "2m"
  node = "tech"
  action = "offline"
}
event {
  at = "4m"
  node = "office"
  action = "write"
  record = "r"
  fields = { status = "c" }
}
event {
  at = "5m"
  node = "tech"
  action = "write"
  record = "r"
  fields = { status = "b" }
}
event {
  at = "10m"
  node = "tech"
  action = "online"
}
event {
  at = "11m"
  node = "tech"
  action = "sync"
}
`)
	for _, tc := range []struct {
		strategy string
		final    string
		errors   int
	}{{"office-wins", `"c"`, 1}, {"lww", `"b"`, 1}} {
		r := run(t, sc, tc.strategy, 1)
		m := r.Metrics
		if got := r.Final["workorders/r"].Fields["status"]; got != tc.final || m.LostUpdates != 1 || m.SyncErrors != tc.errors || !m.Converged {
			t.Errorf("%s: status %s, lost %d, sync errors %d, converged %v; want %s, 1, %d, true", tc.strategy, got, m.LostUpdates, m.SyncErrors, m.Converged, tc.final, tc.errors)
		}
	}
}

// TestTopologies: while the hub is cut off from the devices, a write
// reaches another device only where devices sync with each other (mesh;
// mixed within a site), and every topology converges once it heals.
func TestTopologies(t *testing.T) {
	for _, tc := range []struct {
		topology  string
		sameSite  bool // d-2 sees d-1's write during the partition
		otherSite bool // e-1 (another site) does
	}{
		{"hub-and-spoke", false, false},
		{"mesh", true, true},
		{"mixed", true, false},
	} {
		sc := parse(t, fmt.Sprintf(`
name = "topology"
duration = "2h"
topology = "%s"
network {
  sync_interval = "5m"
}
hub "office" {}
device "d" {
  count = 2
}
device "e" {
  count = 1
}
partition {
  start = "0s"
  duration = "1h"
  between = ["office", "devices"]
}
event {
  at = "10m"
  node = "d-1"
  action = "write"
  record = "r"
  fields = { a = 1 }
}
event {
  at = "50m"
  node = "d-2"
  action = "snapshot"
  label = "d-2"
}
event {
  at = "50m"
  node = "e"
  action = "snapshot"
  label = "e"
}
`, tc.topology))
		r := run(t, sc, "lww", 1)
		got := map[string]bool{}
		for _, snap := range r.Snapshots {
			got[snap.Label] = snap.Records["workorders/r"].Exists
		}
		if got["d-2"] != tc.sameSite || got["e"] != tc.otherSite {
			t.Errorf("%s: during the partition d-2 has the write: %v (want %v), e: %v (want %v)", tc.topology, got["d-2"], tc.sameSite, got["e"], tc.otherSite)
		}
		if !r.Metrics.Converged {
			t.Errorf("%s: not converged", tc.topology)
		}
	}
}

// TestAgreesWithE2E: test/e2e's TestPoliciesThroughTheDaemon (hub and
// technician as processes): the technician's offline change is undone
// under server-wins, and wins under client-wins although the
// dispatcher's concurrent change of the same field is stamped later.
func TestAgreesWithE2E(t *testing.T) {
	for _, tc := range []struct {
		strategy, techStart, hubField, hubValue, want string
	}{
		{"server-wins", "09:00", "end", "12:00", `{"end":"12:00","start":"08:00"}`},
		{"client-wins", "09:30", "start", "07:00", `{"end":"10:00","start":"09:30"}`},
	} {
		sc := parse(t, fmt.Sprintf(`
name = "e2e"
duration = "10m"
table = "wo"
network {
  sync_interval = "1s"
}
hub "hub" {}
device "tech" {}
event {
  at = "0s"
  node = "hub"
  action = "write"
  record = "wo1"
  fields = { start = "08:00", end = "10:00" }
}
event {
  at = "5s"
  node = "tech"
  action = "offline"
}
event {
  at = "10s"
  node = "tech"
  action = "write"
  record = "wo1"
  fields = { start = %q }
}
event {
  at = "20s"
  node = "hub"
  action = "write"
  record = "wo1"
  fields = { %s = %q }
}
event {
  at = "30s"
  node = "tech"
  action = "online"
}
`, tc.techStart, tc.hubField, tc.hubValue))
		r := run(t, sc, tc.strategy, 1)
		v := r.Final["wo/wo1"]
		got := fmt.Sprintf(`{"end":%s,"start":%s}`, v.Fields["end"], v.Fields["start"])
		if got != tc.want || len(v.Conflicts) != 0 || r.Metrics.SyncErrors == 0 || r.Metrics.Tentative != 0 || !r.Metrics.Converged {
			t.Errorf("%s: %s (conflicts %v, %d sync errors, %d tentative, converged %v); want %s with sync errors",
				tc.strategy, got, v.Conflicts, r.Metrics.SyncErrors, r.Metrics.Tentative, r.Metrics.Converged, tc.want)
		}
	}
}

// TestTwoHubs: with two hubs (the first arbitrates, as with --no-arbiter
// on the others), every strategy converges, and a device cut off from the
// arbiter still reaches it through the other hub.
func TestTwoHubs(t *testing.T) {
	sc := parse(t, `
name = "two-hubs"
duration = "3h"
records = 3
network {
  sync_interval = "10m"
}
hub "a" {}
hub "b" {}
device "d" {
  count = 3
  write_rate = 6
}
partition {
  start = "0s"
  duration = "3h"
  between = ["a", "d-1"]
}
event {
  at = "1h"
  node = "d-1"
  action = "write"
  record = "x"
  fields = { a = 1 }
}
event {
  at = "2h"
  node = "a"
  action = "snapshot"
  label = "a"
}
`)
	for _, s := range DefaultStrategies {
		r := run(t, sc, s, 2)
		if !r.Metrics.Converged || r.Metrics.Tentative != 0 || r.Metrics.Writes == 0 {
			t.Errorf("%s: converged %v, %d tentative, %d writes", s, r.Metrics.Converged, r.Metrics.Tentative, r.Metrics.Writes)
		}
		if len(r.Snapshots) != 1 || !r.Snapshots[0].Records["workorders/x"].Exists {
			t.Errorf("%s: the arbiter does not hold d-1's write an hour after it, through hub b", s)
		}
	}
}
