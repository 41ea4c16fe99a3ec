# The outputs read back by the engines downstream uses (issue 15): Spark, DuckDB, Polars,
# pyarrow and pandas. Included by the root Makefile (-include mk/*.mk).
#
#   make interop        writes the demo store and the real feed's two days (INTEROP_REAL) with
#                       INTEROP_BIN into INTEROP_WORK, then reads every output kind of each store,
#                       all dates at once, with each engine and checks names, types, nullability,
#                       row counts per date (from the run reports) and known rows of the real
#                       files (interop/check.py). One line per engine and kind; exit 1 on any
#                       difference. About two minutes, most of it Spark's start and warm-up.
#                       INTEROP_ARGS="--engines duckdb,polars" narrows it.
#
# The readers come from PyPI, pinned with hashes in interop/requirements.lock, into
# .venv-interop/ (git-ignored; reinstalled when the lock changes). Spark needs Java 17+: Debian's
# openjdk-17-jre-headless is installed when `java` is missing. INTEROP_BIN defaults to the debug
# build, which `cargo build` brings up to date first (a no-op after `make test`); another
# INTEROP_BIN is used as it is.

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
ifeq ($(INTEROP_BIN),$(INTEROP_DEBUG))
	$(CARGO) build --bin retail-ingest
else
	@test -x '$(INTEROP_BIN)' || { echo "interop: no executable at INTEROP_BIN=$(INTEROP_BIN)"; exit 1; }
endif

interop: interop-tools interop-build ## read every output with Spark, DuckDB, Polars, pyarrow, pandas
	$(INTEROP_VENV)/bin/python interop/check.py --bin $(INTEROP_BIN) --real $(INTEROP_REAL) \
	  --work $(INTEROP_WORK) $(INTEROP_ARGS)
