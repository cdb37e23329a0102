package lab

import (
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLabFieldTeam runs the default scenario (field-team: one hub,
// twelve devices, 24 hours, offline 4 hours a day; seed 1) once per
// strategy per iteration, on one goroutine, and reports simulated
// device-hours per wall-clock minute (and per CPU minute of the process,
// which a loaded machine does not distort). Run it on one core:
//
//	go test ./lab -run '^$' -bench BenchmarkLab -cpu 1
func BenchmarkLabFieldTeam(b *testing.B) {
	scs, err := Load("field-team")
	if err != nil {
		b.Fatal(err)
	}
	var sc *Scenario
	for _, s := range scs {
		if s.Sweep != nil && s.Sweep.Value == 4 {
			sc = s
		}
	}
	if sc == nil {
		b.Fatal("field-team has no sweep value 4")
	}
	// As replicad lab run does (GOGC unset): the simulation allocates
	// much and keeps little.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var hours float64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		for _, name := range sc.Strategies {
			st, err := Lookup(name)
			if err != nil {
				b.Fatal(err)
			}
			r, err := runOne(sc, st, 1)
			if err != nil {
				b.Fatal(err)
			}
			hours += r.Metrics.DeviceHours
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(hours/b.Elapsed().Minutes(), "device-hours/min")
	b.ReportMetric(hours/cpu.Minutes(), "device-hours/cpu-min")
}
