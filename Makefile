# jobq: the two commands are `make run` and `make test`. Both install what
# is missing (Debian 12 packages) and build first.

BUILD      ?= build
SAN_BUILD  ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build run test test-sanitize test-bench test-nats fuzz bench \
	format-check clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DJOBQ_WERROR=ON $(CMAKE_ARGS) > /dev/null

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# A broker and a worker on the embedded LMDB default under ./var, in the
# foreground. Ctrl-C stops both. Builds the three programs only, and says
# nothing about it unless the build fails.
run: deps $(BUILD)/CMakeCache.txt
	@echo "jobq: building the broker, the worker, the gateway and the CLI" \
	    "in $(BUILD)" >&2
	@cmake --build $(BUILD) -j $(JOBS) --target jobq-broker jobq-worker \
	    jobq-gateway jobq-cli > $(BUILD)/run-build.log 2>&1 || \
	    { cat $(BUILD)/run-build.log; exit 1; }
	@sh scripts/run.sh $(BUILD)/apps

# Tests need the broker's crash points (JOBQ_FAULTS), which a plain build
# leaves out, and a nats-server of 2.11.0 or later in the build directory
# (scripts/fetch-nats-server.sh: Debian 12's is older).
test: deps
	sh scripts/fetch-nats-server.sh $(BUILD)/nats
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBQ_WERROR=ON \
	    -DJOBQ_FAULTS=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -j $(JOBS) -LE bench

# The unit and integration suites again under AddressSanitizer and UBSan
# (the runs on the JetStream backend, label nats, are in `make test` only;
# test_nats, test_migrate and test_nats_cluster run in both).
test-sanitize: deps
	sh scripts/fetch-nats-server.sh $(SAN_BUILD)/nats
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DJOBQ_WERROR=ON \
	    -DJOBQ_FAULTS=ON -DJOBQ_SANITIZE=address,undefined $(CMAKE_ARGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure --timeout 600 -j $(JOBS) -LE 'bench|nats'

# libFuzzer on the decoders (clang), FUZZ_SECONDS each, from the seed
# corpus in tests/fuzz/corpus; new inputs go to $(FUZZ_BUILD)/corpus, and a
# crash is written there as crash-*: copy it into tests/fuzz/corpus/ so
# `make test` replays it from then on.
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DJOBQ_FUZZ=ON $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_msg fuzz_record fuzz_keys fuzz_zap
	for t in fuzz_msg fuzz_record fuzz_keys fuzz_zap; do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
	    $(FUZZ_BUILD)/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=65536 -artifact_prefix=$(FUZZ_BUILD)/corpus/ \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# jobq, beanstalkd and BullMQ side by side (bench/run.sh); QUICK=1 for a
# short run that checks the harness still works.
bench: build
	QUICK=$(QUICK) sh bench/run.sh $(BUILD)

# The bench programs' own tests (label `bench`, outside `make test`).
test-bench: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -L bench

# Every test that runs on the JetStream backend (tests/README.md).
test-nats: build
	sh scripts/fetch-nats-server.sh $(BUILD)/nats
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -j $(JOBS) -R 'nats|migrate'

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
