# Human entry points. `make run` starts the product, `make test` runs every test.
# Both install their own dependencies on Debian bookworm (scripts/install-deps).
BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= 2
CMAKE_FLAGS ?=
# The compose test builds four images with podman (several minutes): on in CI, opt-in locally.
COMPOSE ?= $(if $(filter true,$(CI)),1,0)
CTEST = ctest --output-on-failure -j$(JOBS)

.PHONY: all deps build build-asan test check check-asan test-compose run bench format \
        format-check fuzz clean bench-cluster bench-scale

all: build

deps:
	scripts/install-deps base browser $(if $(filter 1,$(COMPOSE)),compose)

build:
	scripts/install-deps base
	cmake -S . -B $(BUILD) -DPARLEY_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

build-asan:
	scripts/install-deps base
	cmake -S . -B $(BUILD_ASAN) -DPARLEY_WERROR=ON -DPARLEY_ASAN=ON -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_COMPILER=gcc $(CMAKE_FLAGS)
	cmake --build $(BUILD_ASAN) -j$(JOBS)

# The whole suite twice: a normal build, then ASan+UBSan. The compose test runs in the first.
test: deps format-check
	cmake -S . -B $(BUILD) -DPARLEY_WERROR=ON -DPARLEY_COMPOSE_TEST=$(if $(filter 1,$(COMPOSE)),ON,OFF) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	$(CTEST) --test-dir $(BUILD)
	$(MAKE) --no-print-directory check-asan

check: build
	$(CTEST) --test-dir $(BUILD)

check-asan: build-asan
	$(CTEST) --test-dir $(BUILD_ASAN)

test-compose: deps
	scripts/install-deps compose
	cmake -S . -B $(BUILD) -DPARLEY_WERROR=ON -DPARLEY_COMPOSE_TEST=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	$(CTEST) --test-dir $(BUILD) -L compose

run: build
	PARLEY_BUILD_DIR=$(BUILD) scripts/run-native

bench: build
	scripts/install-deps base bench
	bench/run-bench

# Issue 11: two chat daemons on one Redis against Socket.IO on its Redis adapter (~5 min).
bench-cluster: build
	scripts/install-deps base bench
	bench/run-cluster

# Issue 11: 50,000 connections held across 3 chat daemons, then traffic in rooms of 100 (< 10 min).
bench-scale: build
	scripts/install-deps base
	bench/run-scale

# libFuzzer targets (clang-14): every fuzz_* binary runs FUZZ_SECONDS on its own.
FUZZ_SECONDS ?= 60
fuzz:
	scripts/install-deps base
	cmake -S . -B build-fuzz -DPARLEY_FUZZ=ON -DPARLEY_BLACKBOX=OFF -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_COMPILER=clang-14 $(CMAKE_FLAGS)
	cmake --build build-fuzz -j$(JOBS)
	for f in $$(find build-fuzz -maxdepth 3 -type f -name 'fuzz_*' -perm -u+x); do \
	    mkdir -p build-fuzz/corpus/$$(basename $$f); \
	    $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/corpus/$$(basename $$f) || exit 1; \
	done

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
