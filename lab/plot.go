package lab

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
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
// swept parameter when there is one); bytes per write. Each value is the
// mean over seeds, with an error bar from the least to the greatest run.
func Plots(sc *Scenario, rows []SummaryRow) (map[string][]byte, error) {
	figs, err := buildPlots(sc, rows)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range figs {
		if err := render(out, f.name, f.Plot, 8, 4.5); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// figure is one plot, with the error bars and line series drawn on it.
type figure struct {
	name string
	*plot.Plot
	errorBars []*plotter.YErrorBars
	lines     []lineSeries
}

// lineSeries is how one series of a line plot is told apart.
type lineSeries struct {
	name   string
	dx     vg.Length // its dodge
	shape  draw.GlyphDrawer
	radius vg.Length
}

// spread adds error bars at xs showing each stat's spread over seeds
// (min to max around the mean), scaled like the values, drawn dx to the
// right of the data (where the bar or marker of their series is).
func (f *figure) spread(xs []float64, stats []Stat, scale float64, dx vg.Length, c color.Color) {
	eb := &plotter.YErrorBars{XYs: make(plotter.XYs, len(xs)), YErrors: make(plotter.YErrors, len(xs)), CapWidth: vg.Points(5)}
	for i, st := range stats {
		eb.XYs[i] = plotter.XY{X: xs[i], Y: st.Mean * scale}
		eb.YErrors[i].Low = (st.Mean - st.Min) * scale
		eb.YErrors[i].High = (st.Max - st.Mean) * scale
	}
	eb.LineStyle = draw.LineStyle{Color: darker(c), Width: vg.Points(1)}
	f.Add(shifted{eb, dx})
	f.errorBars = append(f.errorBars, eb)
}

// dodge is series i's horizontal shift among n on a line plot, so that
// series with the same values stay side by side, not one on the other.
func dodge(i, n int) vg.Length {
	step := min(vg.Points(3), vg.Points(24)/vg.Length(n))
	return (vg.Length(i) - vg.Length(n-1)/2) * step
}

// markerRadius shrinks along the series, so where markers coincide the
// later, smaller ones sit inside the earlier ones.
func markerRadius(i, n int) vg.Length {
	return vg.Points(3) + vg.Points(4)*vg.Length(n-1-i)/vg.Length(max(n-1, 1))
}

// darker is c at two thirds, for error bars over a bar of color c.
func darker(c color.Color) color.Color {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r * 2 / 3 >> 8), uint8(g * 2 / 3 >> 8), uint8(b * 2 / 3 >> 8), uint8(a >> 8)}
}

// shifted draws a plotter dx to the right of where its data falls: the
// bars of a group side by side, and dodged series.
type shifted struct {
	plot.Plotter
	dx vg.Length
}

func (s shifted) Plot(c draw.Canvas, p *plot.Plot) {
	c.Push()
	c.Translate(vg.Point{X: s.dx})
	s.Plotter.Plot(c, p)
	c.Pop()
}

func (s shifted) DataRange() (xmin, xmax, ymin, ymax float64) {
	if dr, ok := s.Plotter.(plot.DataRanger); ok {
		return dr.DataRange()
	}
	return math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
}

func (s shifted) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	g, ok := s.Plotter.(plot.GlyphBoxer)
	if !ok {
		return nil
	}
	bs := g.GlyphBoxes(p)
	for i := range bs {
		bs[i].Rectangle = bs[i].Rectangle.Add(vg.Point{X: s.dx})
	}
	return bs
}

// buildPlots makes the figures Plots renders.
func buildPlots(sc *Scenario, rows []SummaryRow) ([]*figure, error) {
	var figs []*figure
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
	f := &figure{name: PlotLostConflicts, Plot: plot.New()}
	f.Title.Text = sc.Name + ": what happens to concurrent writes" + suffix
	f.Y.Label.Text = "count per run (mean; bars: min-max)"
	rs := at(last)
	series := []struct {
		name string
		get  func(SummaryRow) Stat
	}{
		{"lost updates", func(r SummaryRow) Stat { return r.LostUpdates }},
		{"conflicts shown", func(r SummaryRow) Stat { return r.Conflicts }},
		{"rejected", func(r SummaryRow) Stat { return r.Rejected }},
	}
	w := vg.Points(14)
	for i, s := range series {
		vals := make(plotter.Values, len(rs))
		stats := make([]Stat, len(rs))
		for j, r := range rs {
			stats[j] = s.get(r)
			vals[j] = stats[j].Mean
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = palette[i%len(palette)]
		bc.Offset = vg.Length(i-1) * w
		f.Add(bc)
		f.spread(positions(len(rs)), stats, 1, bc.Offset, bc.Color)
		f.Legend.Add(s.name, bc)
	}
	f.Legend.Top = true
	f.NominalX(names(rs)...)
	headroom(f.Plot)
	figs = append(figs, f)

	// Convergence time.
	f = &figure{name: PlotConvergence, Plot: plot.New()}
	f.Y.Label.Text = "minutes to convergence (mean; bars: min-max)"
	if sc.Sweep != nil && len(rows) > len(strategies) {
		f.Title.Text = sc.Name + ": convergence as " + sc.Sweep.Label + " grows"
		f.X.Label.Text = sc.Sweep.Label
		for i, name := range strategies {
			var sw []SummaryRow
			for _, r := range rows {
				if r.Strategy == name && r.Sweep != nil {
					sw = append(sw, r)
				}
			}
			if err := f.series(name, sw, func(r SummaryRow) Stat { return r.ConvergenceS }, 1.0/60, i, len(strategies), i, palette[i%len(palette)]); err != nil {
				return nil, err
			}
		}
		f.Legend.Top = true
	} else {
		f.Title.Text = sc.Name + ": time to convergence"
		vals := make(plotter.Values, len(rs))
		stats := make([]Stat, len(rs))
		for j, r := range rs {
			stats[j] = r.ConvergenceS
			vals[j] = r.ConvergenceS.Mean / 60
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(24))
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = palette[0]
		f.Add(bc)
		f.spread(positions(len(rs)), stats, 1.0/60, 0, bc.Color)
		f.NominalX(names(rs)...)
	}
	headroom(f.Plot)
	figs = append(figs, f)

	// Lost updates and rejections as the swept parameter grows.
	if sc.Sweep != nil && len(rows) > len(strategies) {
		f = &figure{name: PlotLostSweep, Plot: plot.New()}
		f.Title.Text = sc.Name + ": lost, rejected and conflicting changes as " + sc.Sweep.Label + " grows"
		f.X.Label.Text = sc.Sweep.Label
		f.Y.Label.Text = "per run (mean; bars: min-max)"
		type lostSeries struct {
			name  string
			color color.Color
			rows  []SummaryRow
			get   func(SummaryRow) Stat
		}
		var shown []lostSeries
		for i, name := range strategies {
			for _, ser := range []struct {
				what string
				get  func(SummaryRow) Stat
			}{
				{"lost", func(r SummaryRow) Stat { return r.LostUpdates }},
				{"rejected", func(r SummaryRow) Stat { return r.Rejected }},
				{"conflicts", func(r SummaryRow) Stat { return r.Conflicts }},
			} {
				var sw []SummaryRow
				any := false
				for _, r := range rows {
					if r.Strategy == name && r.Sweep != nil {
						any = any || ser.get(r).Max > 0
						sw = append(sw, r)
					}
				}
				if any {
					shown = append(shown, lostSeries{name + " " + ser.what, palette[i%len(palette)], sw, ser.get})
				}
			}
		}
		for k, ls := range shown {
			if err := f.series(ls.name, ls.rows, ls.get, 1, k, len(shown), k, ls.color); err != nil {
				return nil, err
			}
		}
		f.Legend.Top = true
		f.Legend.Left = true
		headroom(f.Plot)
		figs = append(figs, f)
	}

	// Bytes per write.
	f = &figure{name: PlotBytesPerWrite, Plot: plot.New()}
	f.Title.Text = sc.Name + ": bytes sent per write" + suffix
	f.Y.Label.Text = "bytes on the wire / writes (mean; bars: min-max)"
	vals := make(plotter.Values, len(rs))
	stats := make([]Stat, len(rs))
	for j, r := range rs {
		stats[j] = r.BytesPerWrite
		vals[j] = r.BytesPerWrite.Mean
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(24))
	if err != nil {
		return nil, err
	}
	bc.LineStyle.Width = 0
	bc.Color = palette[2]
	f.Add(bc)
	f.spread(positions(len(rs)), stats, 1, 0, bc.Color)
	f.NominalX(names(rs)...)
	headroom(f.Plot)
	figs = append(figs, f)
	return figs, nil
}

// series adds one line with markers over the sweep: get's mean (times
// scale) at each sweep value with its spread as error bars; series i of n
// is dodged and its markers sized so that coinciding series stay
// visible; style picks the dashes and the marker shape.
func (f *figure) series(name string, rows []SummaryRow, get func(SummaryRow) Stat, scale float64, i, n, style int, c color.Color) error {
	rows = append([]SummaryRow(nil), rows...)
	sort.SliceStable(rows, func(a, b int) bool { return *rows[a].Sweep < *rows[b].Sweep })
	pts := make(plotter.XYs, len(rows))
	xs := make([]float64, len(rows))
	stats := make([]Stat, len(rows))
	for j, r := range rows {
		xs[j], stats[j] = *r.Sweep, get(r)
		pts[j] = plotter.XY{X: xs[j], Y: stats[j].Mean * scale}
	}
	l, sh, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	l.Dashes = plotutil.Dashes(style)
	sh.Color = c
	sh.Shape = plotutil.Shape(style)
	sh.Radius = markerRadius(i, n)
	dx := dodge(i, n)
	f.Add(shifted{l, dx}, shifted{sh, dx})
	f.spread(xs, stats, scale, dx, c)
	f.lines = append(f.lines, lineSeries{name, dx, sh.Shape, sh.Radius})
	f.Legend.Add(name, l, sh)
	return nil
}

// positions are the x positions of n nominal (named) values.
func positions(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
	}
	return xs
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
