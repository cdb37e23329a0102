package lab

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

// Options tune a lab run.
type Options struct {
	// Seeds, if set, replaces the scenario's seeds.
	Seeds []uint64
	// Strategies, if set, replaces the scenario's strategies.
	Strategies []string
	// Workers run independent runs in parallel (default 1). Each run is
	// a single-threaded simulation, so the results do not depend on it.
	Workers int
	// Progress, if set, is called once before the first run starts
	// (done 0, r nil) and as each run ends, with the number of runs
	// done, their total and the run (nil if it failed). Calls are
	// serialized, in the order runs end; the results do not depend on it.
	Progress func(done, total int, r *RunResult)
}

// job is one run to make.
type job struct {
	sc    *Scenario
	strat Strategy
	seed  uint64
}

// Run simulates every scenario (one per sweep value) under every strategy
// with every seed, and returns the results in that order.
func Run(scs []*Scenario, opt Options) ([]*RunResult, error) {
	var jobs []job
	for _, sc := range scs {
		names := sc.Strategies
		if len(opt.Strategies) > 0 {
			names = opt.Strategies
		}
		seeds := sc.Seeds
		if len(opt.Seeds) > 0 {
			seeds = opt.Seeds
		}
		for _, name := range names {
			st, err := Lookup(name)
			if err != nil {
				return nil, err
			}
			for _, seed := range seeds {
				jobs = append(jobs, job{sc, st, seed})
			}
		}
	}
	out := make([]*RunResult, len(jobs))
	errs := make([]error, len(jobs))
	workers := max(opt.Workers, 1)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex // serializes opt.Progress
	done := 0
	if opt.Progress != nil {
		opt.Progress(0, len(jobs), nil)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = runOne(jobs[i].sc, jobs[i].strat, jobs[i].seed)
				if opt.Progress != nil {
					mu.Lock()
					done++
					opt.Progress(done, len(jobs), out[i])
					mu.Unlock()
				}
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Stat is a metric's spread over seeds.
type Stat struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"` // sample standard deviation (0 for one seed)
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

func stat(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := Stat{Min: xs[0], Max: xs[0]}
	sum := 0.0
	for _, x := range xs {
		sum += x
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(xs))
	if len(xs) > 1 {
		v := 0.0
		for _, x := range xs {
			v += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(v / float64(len(xs)-1))
	}
	return s
}

// SummaryRow is one strategy (at one sweep value) over every seed.
type SummaryRow struct {
	Strategy      string   `json:"strategy"`
	Sweep         *float64 `json:"sweep,omitempty"`
	Runs          int      `json:"runs"`
	NotConverged  int      `json:"not_converged"`
	Writes        Stat     `json:"writes"`
	LostUpdates   Stat     `json:"lost_updates"`
	Conflicts     Stat     `json:"conflicts"`
	Rejected      Stat     `json:"rejected"`
	SyncErrors    Stat     `json:"sync_errors"`
	Tentative     Stat     `json:"tentative"`
	ConvergenceS  Stat     `json:"convergence_s"`
	Bytes         Stat     `json:"bytes"`
	Messages      Stat     `json:"messages"`
	BytesPerWrite Stat     `json:"bytes_per_write"`
	StalenessS    Stat     `json:"staleness_s"`
}

// Summarize groups results by sweep value and strategy, in the order
// they first appear.
func Summarize(runs []*RunResult) []SummaryRow {
	type key struct {
		strat string
		sweep float64
	}
	groups := map[key][]*RunResult{}
	var order []key
	for _, r := range runs {
		k := key{r.Strategy, 0}
		if r.Sweep != nil {
			k.sweep = r.Sweep.Value
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].sweep < order[j].sweep })
	var rows []SummaryRow
	for _, k := range order {
		rs := groups[k]
		col := func(f func(m *Metrics) float64) Stat {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(&r.Metrics)
			}
			return stat(xs)
		}
		row := SummaryRow{Strategy: k.strat, Runs: len(rs),
			Writes:        col(func(m *Metrics) float64 { return float64(m.Writes) }),
			LostUpdates:   col(func(m *Metrics) float64 { return float64(m.LostUpdates) }),
			Conflicts:     col(func(m *Metrics) float64 { return float64(m.Conflicts) }),
			Rejected:      col(func(m *Metrics) float64 { return float64(m.Rejected) }),
			SyncErrors:    col(func(m *Metrics) float64 { return float64(m.SyncErrors) }),
			Tentative:     col(func(m *Metrics) float64 { return float64(m.Tentative) }),
			ConvergenceS:  col(func(m *Metrics) float64 { return float64(m.ConvergenceMs) / 1000 }),
			Bytes:         col(func(m *Metrics) float64 { return float64(m.Bytes) }),
			Messages:      col(func(m *Metrics) float64 { return float64(m.Messages) }),
			BytesPerWrite: col(func(m *Metrics) float64 { return m.BytesPerWrite }),
			StalenessS:    col(func(m *Metrics) float64 { return m.StalenessMeanMs / 1000 }),
		}
		if rs[0].Sweep != nil {
			v := k.sweep
			row.Sweep = &v
		}
		for _, r := range rs {
			if !r.Metrics.Converged {
				row.NotConverged++
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func (s Stat) String() string {
	if s.SD == 0 && s.Min == s.Max {
		return trimFloat(s.Mean)
	}
	return fmt.Sprintf("%s ± %s", trimFloat(s.Mean), trimFloat(s.SD))
}

func trimFloat(x float64) string {
	switch {
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}
