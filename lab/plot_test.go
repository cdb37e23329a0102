package lab

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

// summaryFixture is a swept summary of three strategies over two sweep
// values whose spreads are known; "a" and "b" have the same values, so
// their lines coincide.
func summaryFixture() []SummaryRow {
	var rows []SummaryRow
	for _, v := range []float64{1, 4} {
		for i, name := range []string{"a", "b", "c"} {
			base := 10 * v
			if name == "c" {
				base = 3 * v
			}
			st := Stat{Mean: base, SD: 1, Min: base - 2 - float64(i), Max: base + 5}
			sw := v
			rows = append(rows, SummaryRow{Strategy: name, Sweep: &sw, Runs: 3,
				LostUpdates: st, Conflicts: st, Rejected: st, ConvergenceS: Stat{Mean: 60 * base, Min: 60 * (base - 1), Max: 60 * (base + 2)},
				BytesPerWrite: st})
		}
	}
	return rows
}

// Every plot shows the runs' spread: each mean has an error bar from the
// least to the greatest run (convergence in minutes, like its values).
func TestPlotsHaveErrorBars(t *testing.T) {
	sc := &Scenario{Name: "fixture", Sweep: &SweepPoint{Name: "x", Label: "x", Value: 4}}
	rows := summaryFixture()
	figs, err := buildPlots(sc, rows)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{ // error bar sets per plot: one per series
		PlotLostConflicts: 3, // lost, conflicts, rejected (at the last sweep value)
		PlotConvergence:   3, // one per strategy
		PlotLostSweep:     9, // three metrics of three strategies
		PlotBytesPerWrite: 1,
	}
	for _, f := range figs {
		n, ok := want[f.name]
		if !ok {
			t.Errorf("unexpected plot %s", f.name)
			continue
		}
		delete(want, f.name)
		if len(f.errorBars) != n {
			t.Errorf("%s: %d sets of error bars, want %d", f.name, len(f.errorBars), n)
		}
		for _, eb := range f.errorBars {
			if len(eb.XYs) == 0 || len(eb.XYs) != len(eb.YErrors) {
				t.Errorf("%s: error bars with %d points and %d errors", f.name, len(eb.XYs), len(eb.YErrors))
			}
			for i, e := range eb.YErrors {
				y := eb.XYs[i].Y
				lo, hi := y-e.Low, y+e.High
				// The fixture's spreads: min is 2-4 below the mean (1
				// minute for convergence), max 5 above (2 minutes).
				okLo := e.Low >= 2 && e.Low <= 4 || f.name == PlotConvergence && approx(e.Low, 1)
				okHi := approx(e.High, 5) || f.name == PlotConvergence && approx(e.High, 2)
				if !okLo || !okHi || lo > y || hi < y {
					t.Errorf("%s point %d: mean %v, bar %v to %v: not the runs' min to max", f.name, i, y, lo, hi)
				}
			}
		}
	}
	for name := range want {
		t.Errorf("plot %s missing", name)
	}
	out, err := Plots(sc, rows)
	if err != nil {
		t.Fatal(err)
	}
	if svg := out["plots/"+PlotConvergence+".svg"]; !bytes.Contains(svg, []byte("bars: min-max")) {
		t.Errorf("the convergence SVG does not say what its bars are")
	}
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Series with the same values do not hide each other: every line series
// of a plot has its own dodge and its own marker (shape or size).
func TestCoincidingSeriesStayDistinct(t *testing.T) {
	sc := &Scenario{Name: "fixture", Sweep: &SweepPoint{Name: "x", Label: "x", Value: 4}}
	figs, err := buildPlots(sc, summaryFixture())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range figs {
		for i, a := range f.lines {
			for _, b := range f.lines[i+1:] {
				checked++
				if a.dx == b.dx {
					t.Errorf("%s: %s and %s have the same dodge %v", f.name, a.name, b.name, a.dx)
				}
				if fmt.Sprintf("%T", a.shape) == fmt.Sprintf("%T", b.shape) && a.radius == b.radius {
					t.Errorf("%s: %s and %s have the same marker (%T, radius %v)", f.name, a.name, b.name, a.shape, a.radius)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no line series on the swept plots")
	}
}
