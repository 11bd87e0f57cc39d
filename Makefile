# The two commands a newcomer needs: `make run` and `make test` (see README.md).
BUILD_DIR   ?= build
FUZZ_DIR    ?= build-fuzz
SAN_DIR     ?= build-sanitize
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CRASH_CYCLES ?= 1000
# Extra bench/run-bench arguments, e.g. BENCH_ARGS='--deferred 100000'.
BENCH_ARGS  ?=

DEV_DIR     := var/dev

.PHONY: all build server run test unit e2e fuzz fuzz-smoke test-sanitize crash-test bench clean format deps

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Only the daemon: the tests and benchmarks are not needed to run it.
server: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target postern

run: server
	@scripts/dev-instance $(BUILD_DIR)/postern $(DEV_DIR)
	exec $(BUILD_DIR)/postern serve --config $(DEV_DIR)/postern.toml

test:
	@scripts/install-deps --test
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@$(MAKE) --no-print-directory fuzz-smoke
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Fuzz targets need clang's libFuzzer runtime (libclang-rt-14-dev).
$(FUZZ_DIR)/.built: $(wildcard src/*/*.cc src/*/*/*.cc fuzz/*.cc)
	@cmake -S . -B $(FUZZ_DIR) -DPOSTERN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS)
	@touch $@

# A few seconds per target, run by `make test`: every corpus input replayed plus a short search.
fuzz-smoke:
	@if [ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] && command -v clang++ >/dev/null; then \
	  $(MAKE) --no-print-directory $(FUZZ_DIR)/.built && scripts/run-fuzzers $(FUZZ_DIR) 5; \
	else echo "fuzz-smoke: clang's libFuzzer runtime is not installed; skipped"; fi

fuzz: $(FUZZ_DIR)/.built
	scripts/run-fuzzers $(FUZZ_DIR) $(FUZZ_SECONDS)

test-sanitize:
	@scripts/install-deps --test
	@cmake -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DPOSTERN_SANITIZE=ON -DPOSTERN_BENCH=OFF >/dev/null
	@cmake --build $(SAN_DIR) -j $(JOBS)
	cd $(SAN_DIR) && POSTERN_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

# The long randomised crash campaign: CRASH_CYCLES simulated power failures under load, each
# followed by recovery and an exactly-once check (make test runs 150 of them).
crash-test: build
	POSTERN_CRASH_CYCLES=$(CRASH_CYCLES) $(BUILD_DIR)/postern_fault_tests --gtest_filter='RandomCrash.*'

bench: build
	@scripts/install-deps --bench
	bench/run-bench $(BUILD_DIR) $(BENCH_ARGS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_DIR) $(SAN_DIR)
