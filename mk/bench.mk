# Benchmarks against the Polars anchor (issues 4 and 15; BENCHMARKS.md). Included by the root
# Makefile (-include mk/*.mk), whose npm-deps (Azurite) and mk/functions.mk's package it uses.
#
#   make bench          the binary inside the zip `make package` builds (extracted to
#                       target/bench/shipped/), on generated data (once, in target/bench/data):
#                       W1-W6 and the handler start, each alternated with the Polars anchor
#                       (../shared/anchors/polars_pipeline.py; --ref-cache for the steady state);
#                       checks the outputs are equal row for row before printing ratios; then SW,
#                       the sweep over 365 published dates, idle and after one late file, on the
#                       local directory and on Azurite (issue 14). Long.
#                       BENCH_ARGS="--only W1,W2 --runs 5" narrows or lengthens it, --only SW is
#                       the sweep alone (about 7 minutes: running 365 dates on Azurite first).
#                       BENCH_BIN=PATH measures another binary (no package built), and
#                       BENCH_BIN="musl=PATH glibc=PATH" several in the same alternated rounds.
#   make bench-candidates  the builds the shipped one was chosen from (BENCHMARKS.md, "The shipped
#                       build") into target/candidates/NAME/retail-ingest: glibc-host, musl,
#                       musl-mimalloc, musl-jemalloc, glibc-2.28; then
#                       make bench BENCH_BIN="$$(make -s bench-candidates-list)" measures them all.
#   make bench-profile  perf profiles (CPU, page faults) of W1 and W2, per function, of PROFILE_BIN
#                       (default the unstripped shipped build); run `make bench` first.
#   make bench-smoke    the same machinery on tiny generated data, one run each, for CI: fails when
#                       our outputs and the anchor's differ (the S6 run goes through Azurite and
#                       the latency proxy), or when SW's sweeps over 20 dates, locally and on
#                       Azurite, run anything but what they should. Seconds with a warm build;
#                       BENCH_PROFILE=debug uses the debug build `make test` already made, and no
#                       package. Both find cargo's builds under CARGO_TARGET_DIR when it is set.
#
# Polars and pyarrow come from PyPI, pinned, into .venv-bench/ (git-ignored). /usr/bin/time (peak
# RSS, CPU) comes from Debian's `time` package when missing.

BENCH_VENV       ?= .venv-bench
BENCH_PYTHON     ?= python3
BENCH_PKGS       ?= polars==2.1.0 pyarrow==26.0.1
BENCH_STAMP      := $(BENCH_VENV)/.installed
BENCH_WORK       ?= target/bench
BENCH_REAL       ?= ../shared/data/real
BENCH_ANCHOR     ?= ../shared/anchors/polars_pipeline.py
BENCH_ARGS       ?=
# bench-smoke in CI: BENCH_PROFILE=debug reuses the debug build of `make test` (no release build).
BENCH_PROFILE    ?= release
# Where cargo puts its builds (a worktree that shares another checkout's target dir sets it).
BENCH_TARGET     ?= $(or $(CARGO_TARGET_DIR),target)
BENCH_SHIPPED    := $(BENCH_WORK)/shipped/retail-ingest
BENCH_BIN        ?= shipped=$(BENCH_SHIPPED)
BENCH_FLOOR      := $(BENCH_TARGET)/$(BENCH_PROFILE)/examples/parse_floor
BENCH_PROXY      := $(BENCH_TARGET)/$(BENCH_PROFILE)/examples/latency_proxy
BENCH_COMMON      = --floor $(BENCH_FLOOR) --proxy $(BENCH_PROXY) --anchor $(BENCH_ANCHOR) \
                    --work $(BENCH_WORK) --real $(BENCH_REAL)

CANDIDATES_DIR   ?= target/candidates
CANDIDATES       := glibc-host musl musl-mimalloc musl-jemalloc glibc-2.28
PROFILE_BIN      ?= target/$(PACKAGE_TARGET)/release/retail-ingest
PROFILE_ARGS     ?=

.PHONY: bench bench-smoke bench-tools bench-build bench-shipped bench-candidates bench-candidates-list bench-profile

bench-tools: $(BENCH_STAMP)
	@test -x /usr/bin/time || { \
	  echo "bench: installing GNU time (apt-get install time)"; \
	  (apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time; }) ; }

$(BENCH_STAMP): mk/bench.mk
	rm -rf $(BENCH_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: $(BENCH_PKGS)
	echo "$(BENCH_PKGS)" > $@

bench-build:
	cargo build $(if $(filter release,$(BENCH_PROFILE)),--release) --example parse_floor --example latency_proxy

# The executable exactly as the zip holds it.
bench-shipped: package
	rm -rf $(dir $(BENCH_SHIPPED))
	mkdir -p $(dir $(BENCH_SHIPPED))
	unzip -q -o -j -d $(dir $(BENCH_SHIPPED)) $(PACKAGE_ZIP) retail-ingest

bench: bench-tools bench-build npm-deps $(if $(findstring $(BENCH_SHIPPED),$(BENCH_BIN)),bench-shipped) ## W1-W6 + handler start of the zip's binary beside the Polars anchor (BENCHMARKS.md)
	$(BENCH_VENV)/bin/python bench/bench.py $(foreach b,$(BENCH_BIN),--bin $(b)) $(BENCH_COMMON) $(BENCH_ARGS)

bench-smoke: bench-tools npm-deps ## tiny bench run; fails when our outputs differ from the anchor's
	cargo build $(if $(filter release,$(BENCH_PROFILE)),--release) --bin retail-ingest --example parse_floor --example latency_proxy
	$(BENCH_VENV)/bin/python bench/bench.py --smoke --bin $(BENCH_TARGET)/$(BENCH_PROFILE)/retail-ingest $(BENCH_COMMON) $(BENCH_ARGS)

# One after another (each is minutes of every core); the musl ones share one target folder, so
# each binary is copied out (without its debug information, as shipped) before the next feature
# set rebuilds it.
candidate = mkdir -p $(CANDIDATES_DIR)/$(1) && objcopy --strip-debug $(2) $(CANDIDATES_DIR)/$(1)/retail-ingest

bench-candidates: $(PACKAGE_VENV)/.installed
	@rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null || rustup target add x86_64-unknown-linux-musl
	@command -v musl-gcc >/dev/null || { echo "bench-candidates: musl-gcc is missing: apt-get install musl-tools"; exit 1; }
	cargo build --release --locked --bin retail-ingest
	$(call candidate,glibc-host,target/release/retail-ingest)
	cargo build --release --locked --target x86_64-unknown-linux-musl --bin retail-ingest
	$(call candidate,musl,target/x86_64-unknown-linux-musl/release/retail-ingest)
	cargo build --release --locked --target x86_64-unknown-linux-musl --bin retail-ingest --features mimalloc
	$(call candidate,musl-mimalloc,target/x86_64-unknown-linux-musl/release/retail-ingest)
	cargo build --release --locked --target x86_64-unknown-linux-musl --bin retail-ingest --features jemalloc
	$(call candidate,musl-jemalloc,target/x86_64-unknown-linux-musl/release/retail-ingest)
	$(MAKE) -f mk/functions.mk package-build PACKAGE_TARGET=x86_64-unknown-linux-gnu
	$(call candidate,glibc-2.28,target/x86_64-unknown-linux-gnu/release/retail-ingest)

bench-candidates-list:
	@echo $(foreach c,$(CANDIDATES),$(c)=$(CANDIDATES_DIR)/$(c)/retail-ingest)

bench-profile: bench-tools
	@command -v perf >/dev/null || { echo "bench-profile: perf is missing: apt-get install linux-perf"; exit 1; }
	$(BENCH_VENV)/bin/python bench/profile.py --bin $(PROFILE_BIN) --work $(BENCH_WORK) $(PROFILE_ARGS)
