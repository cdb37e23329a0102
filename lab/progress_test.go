package lab

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is plain lines: the number of runs first, then
// a line as runs end (the first, the last, and at most one a second
// between), each with runs done, elapsed time and an ETA from the pace.
func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&buf, false, func() time.Time { return now })
	r := &RunResult{Strategy: "lww", Seed: 2, Sweep: &SweepPoint{Name: "offline_hours", Value: 4}}
	p.update(0, 4, nil)
	now = now.Add(10 * time.Second)
	p.update(1, 4, r) // first: shown
	now = now.Add(500 * time.Millisecond)
	p.update(2, 4, r) // half a second later: not shown
	now = now.Add(9500 * time.Millisecond)
	p.update(3, 4, r) // 10 s after the last line: shown
	now = now.Add(100 * time.Millisecond)
	p.update(4, 4, r) // the last: shown
	p.finish()
	want := `lab: 4 runs to simulate
lab: 1/4 runs done (lww, offline_hours=4, seed 2), 10s elapsed, ETA 30s
lab: 3/4 runs done (lww, offline_hours=4, seed 2), 20s elapsed, ETA 7s
lab: 4/4 runs done (lww, offline_hours=4, seed 2), 20s elapsed
`
	if got := buf.String(); got != want {
		t.Errorf("progress lines:\n%s\nwant:\n%s", got, want)
	}
}

// On a terminal, progress is one line redrawn in place, ended by a plain
// line when the runs are done.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&buf, true, func() time.Time { return now })
	p.update(0, 2, nil)
	now = now.Add(time.Minute)
	p.update(1, 2, &RunResult{Strategy: "manual", Seed: 1})
	now = now.Add(time.Minute)
	p.update(2, 2, &RunResult{Strategy: "manual", Seed: 2})
	p.finish()
	out := buf.String()
	for _, w := range []string{"\r\033[K[" + strings.Repeat("=", 15) + strings.Repeat(" ", 15) + "] 1/2 runs, 1m00s elapsed, ETA 1m00s", "\r\033[Klab: 2/2 runs done in 2m00s\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("bar output %q lacks %q", out, w)
		}
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("bar output %q: want one line ended, the last", out)
	}
}

// Run calls Options.Progress once before the runs and once per run, in
// order of the count, with the total.
func TestRunReportsProgress(t *testing.T) {
	scs := load(t, "work-order")
	var dones []int
	total := 0
	runs, err := Run(scs, Options{Workers: 2, Progress: func(done, n int, r *RunResult) {
		if (done == 0) != (r == nil) {
			t.Errorf("progress %d/%d with run %v", done, n, r)
		}
		dones = append(dones, done)
		total = n
	}})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(runs) || len(dones) != len(runs)+1 {
		t.Fatalf("progress calls %v with total %d for %d runs", dones, total, len(runs))
	}
	for i, d := range dones {
		if d != i {
			t.Fatalf("progress counts %v: want 0 to %d in order", dones, len(runs))
		}
	}
}
