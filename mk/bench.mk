# Benchmarks against a Polars reference (issue 4; BENCHMARKS.md). Included by the root Makefile
# (-include mk/*.mk); also usable alone (make -f mk/bench.mk bench).
#
#   make bench          release build, generated data (once, in target/bench/data), W1-W5 and the
#                       handler start, each beside bench/reference_polars.py in the same run; checks
#                       the outputs are equal row for row before printing ratios. Several minutes.
#                       BENCH_ARGS="--only W1,W2 --runs 5" narrows or lengthens it.
#   make bench-smoke    the same machinery on tiny generated data, one run each, for CI: fails when
#                       our outputs and the reference's differ. Seconds with a warm build;
#                       BENCH_PROFILE=debug uses the debug build `make test` already made.
#
# Polars comes from PyPI, pinned, into .venv-bench/ (git-ignored). /usr/bin/time (peak RSS, CPU)
# comes from Debian's `time` package when missing.

BENCH_VENV       ?= .venv-bench
BENCH_PYTHON     ?= python3
POLARS_PKG       ?= polars==2.1.0
BENCH_STAMP      := $(BENCH_VENV)/.installed
BENCH_WORK       ?= target/bench
BENCH_REAL       ?= ../shared/data/real
BENCH_ARGS       ?=
# bench-smoke in CI: BENCH_PROFILE=debug reuses the debug build of `make test` (no release build).
BENCH_PROFILE    ?= release
BENCH_BIN        := target/$(BENCH_PROFILE)/retail-ingest
BENCH_FLOOR      := target/$(BENCH_PROFILE)/examples/parse_floor

.PHONY: bench bench-smoke bench-tools bench-build

bench-tools: $(BENCH_STAMP)
	@test -x /usr/bin/time || { \
	  echo "bench: installing GNU time (apt-get install time)"; \
	  (apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time; }) ; }

$(BENCH_STAMP): mk/bench.mk
	rm -rf $(BENCH_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: $(POLARS_PKG)
	echo "$(POLARS_PKG)" > $@

bench-build:
	cargo build $(if $(filter release,$(BENCH_PROFILE)),--release) --bin retail-ingest --example parse_floor

bench: bench-tools bench-build ## W1-W5 + handler start beside the Polars reference (BENCHMARKS.md)
	$(BENCH_VENV)/bin/python bench/bench.py --bin $(BENCH_BIN) --floor $(BENCH_FLOOR) \
	  --work $(BENCH_WORK) --real $(BENCH_REAL) $(BENCH_ARGS)

bench-smoke: bench-tools bench-build ## tiny bench run; fails when our outputs differ from the reference's
	$(BENCH_VENV)/bin/python bench/bench.py --smoke --bin $(BENCH_BIN) --floor $(BENCH_FLOOR) \
	  --work $(BENCH_WORK) --real $(BENCH_REAL) $(BENCH_ARGS)
