#!/usr/bin/env bash
# scripts/bench.sh: `make bench`. Runs the Go benchmarks of the performance
# table (-run '^$', BENCHCOUNT runs each, for benchstat) and the load
# scenarios of `replicad bench` against real agents, then writes the report
# (BENCHDIR/report.md and report.json: each figure with its baseline from
# the same run and the ratio). BENCHQUICK=1: fewer runs, smaller sizes
# (a few minutes). The hub-memory scenario (30 minutes steady) is
# `make bench-memory`; its results (BENCHDIR/memory.json) join the report
# when present.
set -euo pipefail

BENCHDIR=${BENCHDIR:-bench-results}
BENCHCOUNT=${BENCHCOUNT:-6}
BENCHQUICK=${BENCHQUICK:-}
BIN=${BIN:-bin/replicad}

mkdir -p "$BENCHDIR"
go_out="$BENCHDIR/go.txt"
load_out="$BENCHDIR/load.json"
if [[ -f $go_out ]]; then mv "$go_out" "$BENCHDIR/go.old.txt"; fi

count=$BENCHCOUNT
big=(-sync.big)
bigcount=3
propn=100x
loadflags=()
if [[ -n $BENCHQUICK ]]; then
	count=$(( BENCHCOUNT < 2 ? BENCHCOUNT : 2 ))
	big=()
	bigcount=1
	propn=30x
	loadflags=(--quick)
fi

start=$(date +%s)
failed=()
gobench() { # PKG REGEXP [go test flags...]; a failure is reported, the rest still runs
	local pkg=$1 re=$2
	shift 2
	echo "go test $pkg -run '^\$' -bench '$re' $*" >&2
	if ! go test "$pkg" -run '^$' -bench "$re" -benchmem -timeout 0 "$@" | tee -a "$go_out"; then
		failed+=("$pkg $re")
	fi
}
: >"$go_out"
gobench ./crdt '^BenchmarkMerge$/^records=(100|10000)$/^outcome=true$' -count "$count"
gobench ./store '^(BenchmarkLocalWrite|BenchmarkGroupCommit16|BenchmarkApplyRemote1000)$' -count "$count"
gobench ./store '^BenchmarkDiskFootprint$' -count 1 -benchtime 1x
gobench ./replication '^BenchmarkWireBytesPerField$' -count "$count" -benchtime 100x
gobench ./replication '^BenchmarkPartitionHeal$' -count "$count" -benchtime 1x
gobench ./replication '^BenchmarkCatchUp$' -count "$bigcount" -benchtime 1x "${big[@]}"
gobench ./replication '^BenchmarkStateTransfer$' -count "$bigcount" -benchtime 1x
gobench ./replication '^BenchmarkPropagation$' -count "$bigcount" -benchtime "$propn"
gobench ./replication '^BenchmarkCatchUpTLS$' -count "$bigcount" -benchtime 2x
# Queries: one store of REPLICAD_QUERY_BENCH_RECORDS records (1,000,000;
# quick: 100,000) of 20 fields, built once (a few minutes) and shared by
# both query benchmarks through REPLICAD_QUERY_BENCH_DIR.
qdir="$(cd "$BENCHDIR" && pwd)/querybench" # absolute: go test runs in the package's directory
export REPLICAD_QUERY_BENCH_DIR=$qdir REPLICAD_QUERY_BENCH_RECORDS=${REPLICAD_QUERY_BENCH_RECORDS:-$([[ -n $BENCHQUICK ]] && echo 100000 || echo 1000000)}
gobench ./query/source '^BenchmarkQueryIndexed$' -count "$count" -benchtime 2000x
gobench ./query/source '^BenchmarkQueryScan$' -count "$bigcount" -benchtime 1x
gobench ./internal/httpapi '^BenchmarkQueryHTTP$' -count "$count" -benchtime 2000x
rm -rf "$qdir"
unset REPLICAD_QUERY_BENCH_DIR
gobench ./query/source '^BenchmarkWriteIndexed$' -count "$count" -benchtime 1000x
gobench ./query/live '^BenchmarkLive(LocalWrite|RemoteWrite|1000Subscribers|SyncSession)$' -count "$count" -benchtime 500x
gobench ./internal/httpapi '^BenchmarkWatchSSE1000$' -count "$bigcount" -benchtime 100x
echo "go benchmarks: $(( $(date +%s) - start ))s" >&2

echo "$BIN bench ${loadflags[*]} --out $load_out" >&2
"$BIN" bench "${loadflags[@]}" --out "$load_out"
echo "go benchmarks and load scenarios: $(( $(date +%s) - start ))s" >&2

loads=(--load "$load_out")
if [[ -f $BENCHDIR/memory.json ]]; then loads+=(--load "$BENCHDIR/memory.json"); fi
"$BIN" bench report --go "$go_out" "${loads[@]}" --out "$BENCHDIR"

if command -v benchstat >/dev/null; then
	if [[ -f $BENCHDIR/go.old.txt ]]; then
		echo "benchstat (previous run vs this one):"
		benchstat "$BENCHDIR/go.old.txt" "$go_out" || true
	else
		benchstat "$go_out" || true
	fi
else
	echo "(benchstat not installed: go install golang.org/x/perf/cmd/benchstat@latest for a statistical summary of $go_out)"
fi
if (( ${#failed[@]} > 0 )); then
	printf 'FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
