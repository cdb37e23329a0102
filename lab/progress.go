package lab

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Progress modes of `replicad lab run --progress`.
const (
	ProgressAuto  = "auto"  // a bar when stderr is a terminal, else lines
	ProgressBar   = "bar"   // one line redrawn in place
	ProgressLines = "lines" // plain lines, for logs and pipes
	ProgressNone  = "none"
)

// progress reports how far a lab run is, on stderr only: the results and
// plots never depend on it. As a bar it redraws one line (runs done,
// elapsed time, ETA) as runs end; as lines it prints one line per run
// ended, at most one per interval besides the first and the last.
//
// It reads the wall clock it is given (cmd/replicad's), never on its
// own: the lab's simulated time is the only time the lab package reads.
type progress struct {
	w        io.Writer
	bar      bool
	interval time.Duration    // lines: the least time between two lines
	now      func() time.Time // the wall clock

	mu       sync.Mutex
	start    time.Time
	done     int
	total    int
	lastLine time.Time
}

func newProgress(w io.Writer, bar bool, now func() time.Time) *progress {
	return &progress{w: w, bar: bar, interval: time.Second, now: now}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// update is an Options.Progress.
func (p *progress) update(done, total int, r *RunResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.done, p.total = done, total
	if done == 0 {
		p.start, p.lastLine = now, now
		if p.bar {
			p.draw(now)
		} else {
			fmt.Fprintf(p.w, "lab: %d runs to simulate\n", total)
		}
		return
	}
	if p.bar {
		p.draw(now)
		return
	}
	if done == 1 || done == total || now.Sub(p.lastLine) >= p.interval {
		fmt.Fprintf(p.w, "lab: %d/%d runs done%s, %s elapsed%s\n", done, total, runLabel(r), clock(now.Sub(p.start)), p.eta(now))
		p.lastLine = now
	}
}

// finish ends the report: the bar's line is replaced by a plain one.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar && p.total > 0 {
		fmt.Fprintf(p.w, "\r\033[Klab: %d/%d runs done in %s\n", p.done, p.total, clock(p.now().Sub(p.start)))
	}
}

func (p *progress) draw(now time.Time) {
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = width * p.done / p.total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r\033[K[%s] %d/%d runs, %s elapsed%s", bar, p.done, p.total, clock(now.Sub(p.start)), p.eta(now))
}

// eta estimates the time left from the pace so far.
func (p *progress) eta(now time.Time) string {
	if p.done == 0 || p.done >= p.total {
		return ""
	}
	elapsed := now.Sub(p.start)
	left := time.Duration(float64(elapsed) / float64(p.done) * float64(p.total-p.done))
	return ", ETA " + clock(left)
}

// runLabel names a run in a progress line: " (strategy, sweep, seed)".
func runLabel(r *RunResult) string {
	if r == nil {
		return ""
	}
	s := " (" + r.Strategy
	if r.Sweep != nil {
		s += ", " + r.Sweep.Name + "=" + fmtF(r.Sweep.Value)
	}
	return s + fmt.Sprintf(", seed %d)", r.Seed)
}

// clock shows a duration as 1h02m03s, 2m03s or 3s.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
