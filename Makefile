# Makefile for replicad. `make` (or `make help`) lists the targets.
#
# Every recipe runs in bash with -eu -o pipefail, so a failing command
# anywhere in a pipeline fails the target. Targets that run the go tool over
# ./... say "no packages yet" instead of failing while the module is empty.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Settings; override on the command line, e.g. `make fuzz FUZZTIME=2s`.
# (No trailing comments here: make would keep the space before them.)
FUZZTIME ?= 30s
BENCHCOUNT ?= 6
BENCHDIR ?= bench-results
BENCHQUICK ?=
ARGS ?=

# The daemon's main package; build and run change behaviour once it exists.
DAEMON := $(wildcard cmd/replicad/*.go)

# Succeeds if ./... matches at least one package. -e lists packages that fail
# to load too, so a broken package is reported by the go command that follows
# rather than hidden as "no packages".
HAVE_PKGS = test -n "$$(go list -e ./... 2>/dev/null)"
NO_PKGS = echo "no packages yet"

.PHONY: help build test race race-core staticcheck lint fuzz bench bench-memory tidy-check run e2e demo soak-sync soak clean

help: ## Show this help
	@echo "Usage: make TARGET [VAR=value ...]"
	@echo
	@echo "Targets:"
	@awk -F ':.*## ' '/^[a-zA-Z0-9_-]+:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Settings (current value, then meaning):"
	@printf '  %-12s %-14s %s\n' \
		FUZZTIME '$(FUZZTIME)' 'time per Fuzz* target in make fuzz' \
		BENCHCOUNT '$(BENCHCOUNT)' '-count of the Go benchmarks in make bench (benchstat wants >= 6)' \
		BENCHDIR '$(BENCHDIR)' 'where make bench writes go.txt, load.json, report.md, report.json' \
		BENCHQUICK '$(BENCHQUICK)' 'non-empty: make bench and bench-memory in quick mode (smaller, fewer runs)' \
		ARGS '$(ARGS)' "extra flags for make run, e.g. ARGS='--role hub'" \
		DURATION '$(DURATION)' 'how long make soak keeps starting fault runs' \
		NODES '$(NODES)' 'nodes per fault run in make soak (one hub, the rest devices)' \
		SEED '$(SEED)' 'first seed of make soak (0: random, printed; run i uses SEED+i)'

build: ## Build bin/replicad (or, before the daemon exists, every package)
ifneq ($(DAEMON),)
	go build -o bin/replicad ./cmd/replicad
else
	@if $(HAVE_PKGS); then set -x; go build ./...; else $(NO_PKGS); fi
endif

# go test's -timeout bounds each package's test binary; `timeout` bounds
# the whole run (every package, the build included).
test: ## Run every test (the whole run bounded at 20m; each package at 14m)
	@if $(HAVE_PKGS); then set -x; timeout -k 30s 20m go test -timeout 14m ./...; else $(NO_PKGS); fi

race: ## Run every test with the race detector (the whole run bounded at 40m; each package at 20m)
	@if $(HAVE_PKGS); then set -x; timeout -k 30s 40m go test -race -timeout 20m ./...; else $(NO_PKGS); fi

# The packages CI runs under the race detector (their tests fit CI's time:
# about 5 minutes on 2 cores). -short leaves out TestThirtyNodes only (30
# memberlist nodes in one process flap under -race on a loaded shared
# machine; make test runs it without -race).
RACE_PKGS := ./hlc ./crdt ./policy ./store ./replication ./gossip ./agent/... ./internal/... ./query/... ./api ./replica

race-core: ## The core packages' tests with the race detector, as CI runs them (the whole run bounded at 30m)
	timeout -k 30s 30m go test -race -short -count=1 -timeout 25m $(RACE_PKGS)

STATICCHECK_VERSION := v0.8.2

staticcheck: ## Install the pinned staticcheck (STATICCHECK_VERSION, into GOPATH/bin) and run its default checks over every package
	go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	"$$(go env GOPATH)/bin/staticcheck" ./...

lint: ## Fail on any gofmt difference (tracked and untracked .go files) or go vet finding
	@files=$$(git ls-files --cached --others --exclude-standard -- '*.go' 2>/dev/null \
		|| find . -path ./.git -prune -o -name '*.go' -print); \
	existing=(); for f in $$files; do if [[ -f $$f ]]; then existing+=("$$f"); fi; done; \
	if (( $${#existing[@]} > 0 )); then \
		unformatted=$$(gofmt -l "$${existing[@]}"); \
		if [[ -n $$unformatted ]]; then \
			echo "gofmt: these files need formatting (run gofmt -w on them):"; \
			echo "$$unformatted"; exit 1; \
		fi; \
	fi; \
	echo "gofmt: $${#existing[@]} files ok"
	@if $(HAVE_PKGS); then set -x; go vet ./...; else $(NO_PKGS); fi

# Long variants of the randomized tests (not in make test).
SOAK_RUNS ?= 500
SOAK_STEPS ?= 2000
SOAK_HISTORIES ?= 2000000

soak-sync: ## Long randomized runs: SOAK_RUNS clusters of SOAK_STEPS steps, SOAK_HISTORIES merge histories
	go test -timeout 0 -run 'TestRandomCluster' ./replication -sync.runs=$(SOAK_RUNS) -sync.steps=$(SOAK_STEPS) -v 2>&1 | grep -E '^(---|ok|FAIL)|seed' | tail -20
	go test -timeout 0 -run 'TestRandomHistories$$' ./crdt -crdt.histories=$(SOAK_HISTORIES)

# make soak: fault runs on real processes (test/e2e/faults_test.go).
DURATION ?= 30m
NODES ?= 4
SEED ?= 0

soak: ## Fault soak for DURATION on NODES nodes (hub + devices) from SEED (0: random, printed): partitions, kills, pauses, clock and disk faults; prints runs, faults, writes acknowledged and lost, time to converge
	@echo "go test -count=1 -timeout 0 -run '^TestFaults$$' ./test/e2e -v -fault.duration=$(DURATION) -fault.nodes=$(NODES) -fault.seed=$(SEED)"
	@go test -count=1 -timeout 0 -run '^TestFaults$$' ./test/e2e -v -fault.duration='$(DURATION)' -fault.nodes='$(NODES)' -fault.seed='$(SEED)' 2>&1 \
		| tee soak.log | grep -E '^(--- |ok|FAIL|fault summary)|fault seed|FAILED|unexplained acknowledged|resurrected|not converged|problems' ; \
	echo "full log: soak.log"

fuzz: ## Run every Fuzz* target in the repository, one at a time, each for FUZZTIME
	@FUZZTIME='$(FUZZTIME)' scripts/fuzz-all.sh

bench: build ## Benchmarks and load scenarios against real agents, each figure with a same-run baseline: BENCHDIR/report.md and report.json (~26 min; BENCHQUICK=1 a few)
	@BENCHDIR='$(BENCHDIR)' BENCHCOUNT='$(BENCHCOUNT)' BENCHQUICK='$(BENCHQUICK)' BIN=bin/replicad scripts/bench.sh

bench-memory: build ## Hub memory with 1,000,000 records and 200 devices over a 30-minute steady run (~35 min; BENCHQUICK=1: 100,000, 50, 2 min) into BENCHDIR/memory.json, which make bench's report includes
	@mkdir -p '$(BENCHDIR)'
	bin/replicad bench $(if $(BENCHQUICK),--quick) --out '$(BENCHDIR)/memory.json' hub-memory
	@if [[ -f '$(BENCHDIR)/go.txt' && -f '$(BENCHDIR)/load.json' ]]; then \
		bin/replicad bench report --go '$(BENCHDIR)/go.txt' --load '$(BENCHDIR)/load.json' --load '$(BENCHDIR)/memory.json' --out '$(BENCHDIR)'; fi

tidy-check: ## Fail if `go mod tidy` would change go.mod or go.sum (leaves them untouched)
	@tmp=$$(mktemp -d); \
	cp go.mod "$$tmp/go.mod"; if [[ -f go.sum ]]; then cp go.sum "$$tmp/go.sum"; fi; \
	restore() { cp "$$tmp/go.mod" go.mod; \
		if [[ -f $$tmp/go.sum ]]; then cp "$$tmp/go.sum" go.sum; else rm -f go.sum; fi; \
		rm -rf "$$tmp"; }; \
	trap restore EXIT; \
	go mod tidy; \
	status=0; \
	diff -u --label go.mod.before --label go.mod "$$tmp/go.mod" go.mod || status=1; \
	diff -u --label go.sum.before --label go.sum \
		<(cat "$$tmp/go.sum" 2>/dev/null) <(cat go.sum 2>/dev/null) || status=1; \
	if (( status != 0 )); then echo "go.mod/go.sum are not tidy: run go mod tidy and commit the result"; exit 1; fi; \
	echo "go.mod and go.sum are tidy"

run: build ## Build and run `bin/replicad agent` on its defaults: a device, data in ./replicad-data, API on 127.0.0.1:7400 (extra flags: ARGS=...)
	./bin/replicad agent $(ARGS)

e2e: ## Run the end-to-end tests only (builds the binary once; hub and devices as processes on loopback)
	go test -count=1 -timeout 5m ./test/e2e

demo: build ## Hub and two devices on loopback: offline edits of a work order per policy, a conflict and its resolution (about 20 s; cleans up)
	scripts/demo.sh

clean: ## Remove bin/ and the benchmark results
	rm -rf bin bench-results $(filter-out bench-results,$(BENCHDIR))
