# A thin wrapper over CMake, in the manner of DuckDB's: `make demo` and
# `make test` are the README's two commands and work on a fresh Debian 12.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# No "Entering directory" lines, here or in the make that CMake runs.
MAKEFLAGS += --no-print-directory

.PHONY: all deps configure build test test-asan demo bench clean fuzz

all: build

deps:
	bash scripts/install-deps.sh

configure:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Installs what is missing, builds, runs every test.
test: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 1

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	$(MAKE) build BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DUSHER_SANITIZE=ON $(CMAKE_FLAGS)"
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j 1

# libFuzzer over the loader, expressions, JSON Schema, Kafka replies and the
# trigger API (tests/fuzz), each for FUZZ_SECONDS, in a clang build of its own.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?=
fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DUSHER_FUZZ=ON -DUSHER_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target usher_fuzz_all
	bash tests/fuzz/run_fuzz.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Installs what is missing, builds what scripts/demo.sh runs (no tests,
# benchmarks or fuzz targets), runs the demo. KEEP=1 leaves the server and the
# services running afterwards, for the web console, until Ctrl-C.
DEMO_TARGETS = usher usher-example-services usher-kafka-sandbox usher-kafka-payments usher-booking-history
demo: deps
	$(MAKE) configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(DEMO_TARGETS)
	bash scripts/demo.sh $(BUILD_DIR) $(if $(KEEP),--keep)

# The same demo with the saga log on a throwaway PostgreSQL cluster, stopped
# and removed at the end (scripts/demo-postgres.sh).
.PHONY: demo-postgres
demo-postgres: deps
	$(MAKE) configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(DEMO_TARGETS)
	bash scripts/demo-postgres.sh $(BUILD_DIR)

# The ticketing saga benchmark (docs/performance.md, docs/performance.md): every mode,
# durable (synchronous=FULL), one table, targets checked, JSON in
# $(BUILD_DIR)/bench/bench-data/results.json. `bench` is the quick version
# (under 2 minutes); `bench-full` runs docs/performance.md's sizes, 100,000-saga
# recovery and a BENCH_SOAK_SECONDS soak (10 minutes by default).
BENCH_SOAK_SECONDS ?= 600
.PHONY: bench-full
bench: deps
	$(MAKE) build
	$(BUILD_DIR)/bench/usher-bench --suite quick

bench-full: deps
	$(MAKE) build
	$(BUILD_DIR)/bench/usher-bench --suite full --soak-seconds $(BENCH_SOAK_SECONDS)

# The PostgreSQL store next to SQLite in one run, on a throwaway cluster
# (scripts/bench-postgres.sh, docs/postgresql.md).
.PHONY: bench-postgres
bench-postgres: deps
	$(MAKE) build
	bash scripts/bench-postgres.sh $(BUILD_DIR)

# Throughput with 1, 2 and 4 `usher serve` nodes on one throwaway PostgreSQL,
# each node held to BENCH_CLUSTER_NODE_CPU (0.25) CPU by a cgroup quota,
# BENCH_CLUSTER_ROUNDS (3) rounds (scripts/bench-cluster.sh; needs root;
# docs/performance.md, "Several nodes").
.PHONY: bench-cluster
bench-cluster: deps
	$(MAKE) build
	bash scripts/bench-cluster.sh $(BUILD_DIR)

# docs/performance.md's comparison on its own terms: the step service in Node
# (bench/node/step_service.js, Debian's nodejs), baseline, embedded and
# server at C=1 and C=64.
.PHONY: bench-node
bench-node: deps
	bash scripts/install-deps.sh nodejs
	$(MAKE) build
	$(BUILD_DIR)/bench/usher-bench --suite node

# The chaos test's long version (docs/reliability.md): CHAOS_KILLS SIGKILLs of
# `usher serve` at random moments over CHAOS_SECONDS while CHAOS_SAGAS sagas
# run; prints the totals (kills, sagas by outcome, violations, which must be 0).
# `make test` runs the short version (tests/chaos defaults).
CHAOS_KILLS ?= 100
CHAOS_SECONDS ?= 240
CHAOS_SAGAS ?= 3000
.PHONY: chaos
chaos: deps
	$(MAKE) build
	USHER_CHAOS_KILLS=$(CHAOS_KILLS) USHER_CHAOS_SECONDS=$(CHAOS_SECONDS) USHER_CHAOS_SAGAS=$(CHAOS_SAGAS) \
	  $(BUILD_DIR)/tests/chaos/usher_chaos_tests

clean:
	rm -rf $(BUILD_DIR) build-asan

# The web console's browser test (tests/console) takes a screenshot of each
# page into $(BUILD_DIR)/console-screenshots; this runs it and refreshes the
# README's picture of a saga's timeline from it.
.PHONY: console-screenshot
console-screenshot: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest -R '^console$$' --output-on-failure
	cp $(BUILD_DIR)/console-screenshots/saga-timeline.png docs/images/console-timeline.png
