# retail-ingest: the commands a developer and CI run. `make help` lists them.
#
# The core targets live here; other areas add theirs in mk/*.mk (included at the end).
#
#   make test            npm deps if needed, start Azurite, cargo test --all-targets, stop Azurite
#                        (TEST_ARGS='storage' narrows the run, e.g. make test TEST_ARGS=storage)
#   make fmt             cargo fmt            make fmt-check   cargo fmt --check
#   make clippy          cargo clippy --all-targets -- -D warnings
#   make azurite-start   start Azurite in the background (.azurite/default) and print its
#                        variables; `eval "$$(scripts/azurite.sh env)"` then lets `cargo test` use it
#   make azurite-stop    stop it
#
# Tests that read ../shared/data/real are named real_data_*: without that folder they are skipped
# (and listed as skipped); with CI=true a missing folder is an error.

SHELL        := bash
.SHELLFLAGS  := -eu -o pipefail -c
CARGO        ?= cargo
NPM          ?= npm
REAL_DATA    ?= ../shared/data/real
TEST_ARGS    ?=
# npm ci reruns when the lock file changes or node_modules disappears.
NPM_STAMP    := node_modules/.npm-ci.stamp

.DEFAULT_GOAL := help
.PHONY: help test fmt fmt-check clippy npm-deps azurite-start azurite-stop

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "} {printf "  make %-16s %s\n", $$1, $$2}'

$(NPM_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

npm-deps: $(NPM_STAMP) ## install the npm tools (Azurite) with npm ci

# One shell: Azurite gets a fresh folder and its own ports per run (so parallel runs in one tree
# don't collide), the EXIT trap always stops it, and the recipe exits with cargo's code.
test: $(NPM_STAMP) ## run every test against a fresh Azurite (started and stopped here)
	@skip=(); \
	if [ ! -d "$(REAL_DATA)" ]; then \
	  if [ "$${CI:-}" = true ]; then \
	    echo "make test: $(REAL_DATA) is missing and CI=true: the real_data_ tests must run in CI" >&2; \
	    exit 1; \
	  fi; \
	  skip=(--skip real_data_); \
	fi; \
	mkdir -p .azurite; \
	export AZURITE_DIR="$$(mktemp -d "$(CURDIR)/.azurite/test.XXXXXX")"; \
	trap 'scripts/azurite.sh stop || true; rm -rf "$$AZURITE_DIR"' EXIT; \
	trap 'exit 130' INT TERM; \
	azurite_env="$$(scripts/azurite.sh start)"; \
	eval "$$azurite_env"; \
	if [ $${#skip[@]} -gt 0 ]; then \
	  echo "make test: $(REAL_DATA) is absent, so these tests are skipped:"; \
	  { $(CARGO) test --all-targets $(TEST_ARGS) -- --list 2>/dev/null || true; } \
	    | sed -n 's/^\(.*real_data_.*\): test$$/  skipped: \1/p'; \
	fi; \
	$(CARGO) test --all-targets $(TEST_ARGS) -- "$${skip[@]}"

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check the formatting
	$(CARGO) fmt --all --check

clippy: ## lint with clippy, warnings are errors
	$(CARGO) clippy --all-targets -- -D warnings

azurite-start: $(NPM_STAMP) ## start Azurite in the background and print its variables
	@scripts/azurite.sh start

azurite-stop: ## stop the Azurite started by azurite-start
	@scripts/azurite.sh stop

-include mk/*.mk
