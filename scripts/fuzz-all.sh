#!/usr/bin/env bash
# fuzz-all.sh runs every Go fuzz target in the module, one at a time, each for
# $FUZZTIME (default 30s). It is what `make fuzz` calls.
#
# Targets are found by grepping the _test.go files of each package for
# `func FuzzXxx(`, so a new fuzz target is picked up without editing anything.
# Package directories come from `go list`, which skips testdata/, vendor/ and
# files excluded by build constraints, as `go test` does.
#
# Every target runs even if an earlier one fails; the script exits non-zero
# at the end if any failed. A failing input is written by `go test` to
# PKG/testdata/fuzz/FuzzXxx/ and should be committed as a regression case.
#
# Usage: scripts/fuzz-all.sh [REGEXP]
#   REGEXP, if given, keeps only targets whose name matches it (grep -E).
set -euo pipefail

cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
filter=${1:-.}

# One line per package: import path, directory, then its test files.
pkgs=$(go list -e -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... 2>/dev/null || true)

targets=()
while read -r pkg dir files; do
	[[ -n ${files:-} ]] || continue
	for f in $files; do
		# `func FuzzXxx(f *testing.F)`; as for go test, the rune after "Fuzz"
		# must not be a lower-case letter (FuzzyMatch is not a fuzz target).
		while read -r name; do
			targets+=("$pkg $name")
		done < <(grep -oE '^func Fuzz([A-Z0-9_][A-Za-z0-9_]*)?\([A-Za-z0-9_]+ \*testing\.F\)' "$dir/$f" |
			sed -E 's/^func ([A-Za-z0-9_]+)\(.*/\1/' | grep -E -- "$filter" || true)
	done
done <<<"$pkgs"

if ((${#targets[@]} == 0)); then
	echo "fuzz: no Fuzz* targets found"
	exit 0
fi

echo "fuzz: ${#targets[@]} target(s), ${fuzztime} each"
failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo
	echo "=== $name ($pkg)"
	echo "go test -run '^\$' -fuzz '^${name}\$' -fuzztime $fuzztime $pkg"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$name ($pkg)")
	fi
done

echo
if ((${#failed[@]} > 0)); then
	echo "fuzz: ${#failed[@]} of ${#targets[@]} target(s) failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) passed"
