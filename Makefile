# jobq: the two commands are `make run` and `make test`. Both install what
# is missing (Debian 12 packages) and build first.

BUILD      ?= build
SAN_BUILD  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build run test test-sanitize format-check clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBQ_WERROR=ON $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# A broker and a worker on the embedded LMDB default under ./var, in the
# foreground. Ctrl-C stops both.
run: build
	@sh scripts/run.sh $(BUILD)/apps

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -j $(JOBS)

# The whole suite again under AddressSanitizer and UBSan.
test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DJOBQ_WERROR=ON \
	    -DJOBQ_SANITIZE=address,undefined $(CMAKE_ARGS)
	cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure --timeout 600 -j $(JOBS)

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
