# A thin wrapper over CMake, in the manner of DuckDB's: `make demo` and
# `make test` are the README's two commands and work on a fresh Debian 12.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test test-asan demo bench clean

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

# Installs what is missing, builds, runs the demo.
demo: deps
	$(MAKE) build
	bash scripts/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) build-asan
