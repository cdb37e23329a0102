// Package report turns benchmark results into the report of `make bench`
// (`replicad bench report`): it reads `go test -bench` output (standard
// and custom b.ReportMetric units, every -count run a sample) and the
// load tool's JSON (package loadgen), and writes, for each figure of the
// performance table, its median and spread over the runs, the baseline
// measured in the same run, their ratio, the target and whether it is
// met, as Markdown and JSON.
package report
