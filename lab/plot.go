package lab

import (
	"bytes"
	"fmt"
	"image/color"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot files, without extension; each is written as .png and .svg.
const (
	PlotLostConflicts = "lost-conflicts"
	PlotConvergence   = "convergence"
	PlotBytesPerWrite = "bytes-per-write"
	// PlotLostSweep: lost updates, rejected changes and conflicts shown
	// against the swept parameter (scenarios with a sweep only).
	PlotLostSweep = "lost-sweep"
)

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff},
	color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff},
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
}

// Plots draws the scenario's plots from its summary: lost updates,
// conflicts and rejections per strategy; convergence time (against the
// swept parameter when there is one); bytes per write.
func Plots(sc *Scenario, rows []SummaryRow) (map[string][]byte, error) {
	out := map[string][]byte{}
	last := lastSweep(rows)
	var strategies []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Strategy] {
			seen[r.Strategy] = true
			strategies = append(strategies, r.Strategy)
		}
	}
	at := func(v *float64) []SummaryRow {
		var rs []SummaryRow
		for _, r := range rows {
			if v == nil || r.Sweep != nil && *r.Sweep == *v {
				rs = append(rs, r)
			}
		}
		return rs
	}
	suffix := ""
	if last != nil && sc.Sweep != nil {
		suffix = fmt.Sprintf(" (%s = %s)", sc.Sweep.Label, fmtF(*last))
	}

	// Lost updates, conflicts, rejections.
	p := plot.New()
	p.Title.Text = sc.Name + ": what happens to concurrent writes" + suffix
	p.Y.Label.Text = "count per run (mean over seeds)"
	rs := at(last)
	series := []struct {
		name string
		get  func(SummaryRow) float64
	}{
		{"lost updates", func(r SummaryRow) float64 { return r.LostUpdates.Mean }},
		{"conflicts shown", func(r SummaryRow) float64 { return r.Conflicts.Mean }},
		{"rejected", func(r SummaryRow) float64 { return r.Rejected.Mean }},
	}
	w := vg.Points(14)
	for i, s := range series {
		vals := make(plotter.Values, len(rs))
		for j, r := range rs {
			vals[j] = s.get(r)
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = palette[i%len(palette)]
		bc.Offset = vg.Length(i-1) * w
		p.Add(bc)
		p.Legend.Add(s.name, bc)
	}
	p.Legend.Top = true
	p.NominalX(names(rs)...)
	headroom(p)
	if err := render(out, PlotLostConflicts, p, 8, 4.5); err != nil {
		return nil, err
	}

	// Convergence time.
	p = plot.New()
	p.Y.Label.Text = "time to convergence (minutes, mean over seeds)"
	if sc.Sweep != nil && len(rows) > len(strategies) {
		p.Title.Text = sc.Name + ": convergence as " + sc.Sweep.Label + " grows"
		p.X.Label.Text = sc.Sweep.Label
		for i, name := range strategies {
			var pts plotter.XYs
			for _, r := range rows {
				if r.Strategy == name && r.Sweep != nil {
					pts = append(pts, plotter.XY{X: *r.Sweep, Y: r.ConvergenceS.Mean / 60})
				}
			}
			sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			l.Color = palette[i%len(palette)]
			l.Width = vg.Points(1.5)
			l.Dashes = plotutil.Dashes(i)
			s.Color = l.Color
			s.Shape = plotutil.Shape(i)
			p.Add(l, s)
			p.Legend.Add(name, l, s)
		}
		p.Legend.Top = true
	} else {
		p.Title.Text = sc.Name + ": time to convergence"
		vals := make(plotter.Values, len(rs))
		for j, r := range rs {
			vals[j] = r.ConvergenceS.Mean / 60
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(24))
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = palette[0]
		p.Add(bc)
		p.NominalX(names(rs)...)
	}
	headroom(p)
	if err := render(out, PlotConvergence, p, 8, 4.5); err != nil {
		return nil, err
	}

	// Lost updates and rejections as the swept parameter grows.
	if sc.Sweep != nil && len(rows) > len(strategies) {
		p = plot.New()
		p.Title.Text = sc.Name + ": lost, rejected and conflicting changes as " + sc.Sweep.Label + " grows"
		p.X.Label.Text = sc.Sweep.Label
		p.Y.Label.Text = "per run (mean over seeds)"
		k := 0
		for i, name := range strategies {
			for _, ser := range []struct {
				what string
				get  func(SummaryRow) float64
			}{
				{"lost", func(r SummaryRow) float64 { return r.LostUpdates.Mean }},
				{"rejected", func(r SummaryRow) float64 { return r.Rejected.Mean }},
				{"conflicts", func(r SummaryRow) float64 { return r.Conflicts.Mean }},
			} {
				var pts plotter.XYs
				any := false
				for _, r := range rows {
					if r.Strategy == name && r.Sweep != nil {
						v := ser.get(r)
						any = any || v > 0
						pts = append(pts, plotter.XY{X: *r.Sweep, Y: v})
					}
				}
				if !any {
					continue
				}
				sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
				l, sh, err := plotter.NewLinePoints(pts)
				if err != nil {
					return nil, err
				}
				l.Color = palette[i%len(palette)]
				l.Width = vg.Points(1.5)
				l.Dashes = plotutil.Dashes(k)
				sh.Color = l.Color
				sh.Shape = plotutil.Shape(k)
				k++
				p.Add(l, sh)
				p.Legend.Add(name+" "+ser.what, l, sh)
			}
		}
		p.Legend.Top = true
		p.Legend.Left = true
		headroom(p)
		if err := render(out, PlotLostSweep, p, 8, 4.5); err != nil {
			return nil, err
		}
	}

	// Bytes per write.
	p = plot.New()
	p.Title.Text = sc.Name + ": bytes sent per write" + suffix
	p.Y.Label.Text = "bytes on the wire / writes (mean over seeds)"
	vals := make(plotter.Values, len(rs))
	for j, r := range rs {
		vals[j] = r.BytesPerWrite.Mean
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(24))
	if err != nil {
		return nil, err
	}
	bc.LineStyle.Width = 0
	bc.Color = palette[2]
	p.Add(bc)
	p.NominalX(names(rs)...)
	headroom(p)
	if err := render(out, PlotBytesPerWrite, p, 8, 4.5); err != nil {
		return nil, err
	}
	return out, nil
}

// headroom leaves room above the data for the legend.
func headroom(p *plot.Plot) {
	p.Y.Min = 0
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	p.Y.Max *= 1.4
}

func names(rs []SummaryRow) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Strategy
	}
	return out
}

func lastSweep(rows []SummaryRow) *float64 {
	var last *float64
	for _, r := range rows {
		if r.Sweep != nil && (last == nil || *r.Sweep > *last) {
			v := *r.Sweep
			last = &v
		}
	}
	return last
}

func render(out map[string][]byte, name string, p *plot.Plot, wIn, hIn float64) error {
	for _, ext := range []string{"png", "svg"} {
		wt, err := p.WriterTo(vg.Length(wIn)*vg.Inch, vg.Length(hIn)*vg.Inch, ext)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if _, err := wt.WriteTo(&b); err != nil {
			return err
		}
		out["plots/"+name+"."+ext] = b.Bytes()
	}
	return nil
}
