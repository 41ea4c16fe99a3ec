# The outputs read back by the engines downstream uses (issue 15): Spark, DuckDB, Polars,
# pyarrow and pandas. Included by the root Makefile (-include mk/*.mk).
#
#   make interop        writes the demo store and the real feed's two days (INTEROP_REAL) with
#                       INTEROP_BIN into INTEROP_WORK, then reads every output kind of each store,
#                       all dates at once, with each engine and checks names, types, nullability,
#                       row counts per date (from the run reports) and known rows of the real
#                       files (interop/check.py). One line per engine and kind; exit 1 on any
#                       difference. 0.5-1.5 minutes, most of it Spark's start and warm-up,
#                       plus 2-3 minutes to install the readers the first time (pyspark: 456 MB).
#                       INTEROP_ARGS="--engines duckdb,polars" narrows it.
#
# The readers come from PyPI, pinned with hashes in interop/requirements.lock, into
# .venv-interop/ (git-ignored; reinstalled when the lock changes). Spark needs Java 17+: Debian's
# openjdk-17-jre-headless is installed when `java` is missing. INTEROP_BIN defaults to the debug
# build, used as it is when present (in CI, the one `make test` just built: a plain
# `cargo build --bin` there would build it again, without the dev-dependencies' features) and
# built with cargo when absent; after a change to src/, `cargo build` it first.

CARGO            ?= cargo
INTEROP_VENV     ?= .venv-interop
INTEROP_PYTHON   ?= python3
INTEROP_LOCK     := interop/requirements.lock
INTEROP_STAMP    := $(INTEROP_VENV)/.installed
INTEROP_DEBUG    := target/debug/retail-ingest
INTEROP_BIN      ?= $(INTEROP_DEBUG)
INTEROP_REAL     ?= ../shared/data/real
INTEROP_WORK     ?= target/interop
INTEROP_ARGS     ?=

.PHONY: interop interop-tools interop-build

# pyspark is published only as a source package: pip builds its wheel (the jars inside).
$(INTEROP_STAMP): $(INTEROP_LOCK)
	rm -rf $(INTEROP_VENV)
	$(INTEROP_PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  --require-hashes --only-binary=:all: --no-binary=pyspark -r $(INTEROP_LOCK)
	cp $(INTEROP_LOCK) $@

interop-tools: $(INTEROP_STAMP)
	@command -v java >/dev/null || { \
	  echo "interop: installing Java for Spark (apt-get install openjdk-17-jre-headless)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }; }

interop-build:
	@if [ -x '$(INTEROP_BIN)' ]; then \
	  echo "interop: reading the outputs of $(INTEROP_BIN), built $$(date -r '$(INTEROP_BIN)' '+%F %T')"; \
	elif [ '$(INTEROP_BIN)' = '$(INTEROP_DEBUG)' ]; then \
	  $(CARGO) build --bin retail-ingest; \
	else \
	  echo "interop: no executable at INTEROP_BIN=$(INTEROP_BIN)"; exit 1; \
	fi

interop: interop-tools interop-build ## read every output with Spark, DuckDB, Polars, pyarrow, pandas
	$(INTEROP_VENV)/bin/python interop/check.py --bin $(INTEROP_BIN) --real $(INTEROP_REAL) \
	  --work $(INTEROP_WORK) $(INTEROP_ARGS)
